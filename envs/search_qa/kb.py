"""The generated knowledge base: a small invented world rendered as wiki-style passages, with single-hop and
multi-hop questions grouped into seven sources that mirror Search-R1's test sets (DESIGN.md §6).

The world (fixed seed): countries (capital, currency, language), cities (country, founding year), people
(occupation, birth year and city, spouse) and films (year, director). Names are built from a small syllable
set so a byte-level tokenizer with ~512 merges covers them. Each entity has one compact passage
(`"Title"\\ntext`, 15-25 words). Question styles per source:

| source | style | hops (searches) |
|---|---|---|
| nq | natural single-hop ("where was X born?") | 1 |
| triviaqa | trivia single-hop, some inverse ("which country has X as its capital?") | 1 |
| popqa | long-tail single relation ("what is X's occupation?") | 1 |
| hotpotqa | bridge and comparison | 2 |
| 2wiki | comparison and compositional | 2 |
| musique | 3-hop chain | 3 |
| bamboogle | 2-hop compositional | 2 |

Each question carries a `plan` that the scripted expert follows: which entities to search, which relation to
read from the retrieved passages. The expert reads the answer from the `<information>` text; it never looks at
the gold answer.

Departures: an invented world replaces Wikipedia, so a tiny model can learn the task in minutes on CPU; the
question mix per source mirrors the real sets' hop counts, not their content.
Run: `python -c "from envs.search_qa.kb import generate; kb = generate(240, 0); print(kb.passages[0])"`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from envs.search_qa.config import SearchQAError
from envs.search_qa.data import QAItem

_SYL = ("ka", "ro", "mi", "ten", "val", "dor", "lin", "sa", "bel", "ur", "fen", "tor", "ma", "el", "vin", "ash",
        "po", "gar", "lu", "nes", "ki", "mar", "ost", "ren")  # fmt: skip
_CITY_END = ("holt", "by", "mere", "ford", "stad", "ton", "wick", "dale")
_COUNTRY_END = ("ia", "land", "ovia", "stan", "ria")
_ADJ = (
    "Silver",
    "Red",
    "Quiet",
    "Lost",
    "Golden",
    "Dark",
    "Last",
    "Broken",
    "Hidden",
    "Bright",
    "Cold",
    "Wild",
)
_NOUN = ("Gate", "River", "Crown", "Garden", "Road", "Harbor", "Mirror", "Tower", "Storm", "Island", "Bell",
         "Forest", "Letter", "Winter", "Engine", "Valley", "Song", "Bridge", "Lantern", "Field")  # fmt: skip
_JOBS = (
    "painter",
    "poet",
    "singer",
    "architect",
    "chemist",
    "director",
    "actor",
    "novelist",
    "sculptor",
    "pianist",
)


@dataclass(frozen=True)
class KnowledgeBase:
    """Passages as `(id, contents)` and questions of all seven sources."""

    passages: tuple[tuple[str, str], ...]
    questions: tuple[QAItem, ...]


_MAX_MISSES = 100_000


def _names(rng: random.Random, n: int, make, taken: set[str]) -> list[str]:
    """`n` new distinct names from `make`; a name space too small for `n` is an error, not an endless loop."""
    out: list[str] = []
    misses = 0
    while len(out) < n:
        name = make()
        if name not in taken:
            taken.add(name)
            out.append(name)
            misses = 0
        else:
            misses += 1
            if misses > _MAX_MISSES:
                raise SearchQAError(
                    f"the generated world has no room for {n} distinct names of this kind ({len(out)} found, "
                    f"then only taken ones such as {name!r}); lower search_qa.kb_people"
                )
    return out


def generate(n_people: int, seed: int) -> KnowledgeBase:
    """Build the world, its passages and its questions; same arguments, same result."""
    rng = random.Random(seed)
    word = lambda k: "".join(rng.choice(_SYL) for _ in range(k)).capitalize()  # noqa: E731
    taken: set[str] = set()
    n_countries, n_cities = max(4, n_people // 20), max(8, n_people // 4)
    countries = _names(rng, n_countries, lambda: word(2) + rng.choice(_COUNTRY_END), taken)
    cities = _names(rng, n_cities, lambda: word(2) + rng.choice(_CITY_END), taken)
    people = _names(rng, n_people, lambda: f"{word(2)} {word(2)}", taken)
    # 240 "The Adjective Noun" titles; a larger world names its films "The Silver Gate of Kamiro" (the default
    # world of 240 people keeps its titles)
    title = lambda: f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}"  # noqa: E731
    film = title if n_people <= len(_ADJ) * len(_NOUN) else (lambda: f"{title()} of {word(2)}")
    films = _names(rng, n_people, film, taken)
    currencies = _names(rng, n_countries, lambda: word(2).lower(), taken)
    languages = _names(rng, n_countries, lambda: word(2) + "ish", taken)

    # ---- facts
    city_country = {c: countries[i % n_countries] for i, c in enumerate(cities)}  # every country gets cities
    capital = {k: next(c for c in cities if city_country[c] == k) for k in countries}
    currency = dict(zip(countries, currencies))
    language = dict(zip(countries, languages))
    founded = {c: rng.randint(900, 1700) for c in cities}
    job = {p: rng.choice(_JOBS) for p in people}
    born_year = {p: rng.randint(1800, 1990) for p in people}
    born_city = {p: rng.choice(cities) for p in people}
    shuffled = people[:]
    rng.shuffle(shuffled)
    spouse = {}
    for a, b in zip(shuffled[0::2], shuffled[1::2]):
        spouse[a], spouse[b] = b, a
    film_year = {f: rng.randint(1920, 2020) for f in films}
    director = {f: rng.choice(people) for f in films}

    # ---- passages (one per entity, `"Title"\ntext`)
    passages = []
    for k in countries:
        text = f"{k} is a country. Its capital is {capital[k]}. Its currency is the {currency[k]}. Its language is {language[k]}."
        passages.append(f'"{k}"\n{text}')
    for c in cities:
        passages.append(f'"{c}"\n{c} is a city in {city_country[c]}. It was founded in {founded[c]}.')
    for p in people:
        text = f"{p} is a {job[p]}. {p} was born in {born_year[p]} in {born_city[p]}."
        if p in spouse:
            text += f" {p} married {spouse[p]}."
        passages.append(f'"{p}"\n{text}')
    for f in films:
        passages.append(f'"{f}"\n{f} is a {film_year[f]} film directed by {director[f]}.')
    passages_t = tuple((f"kb-{i}", c) for i, c in enumerate(passages))

    # ---- questions: (source, question, answer, plan); a plan is a list of steps the expert follows
    qs: list[tuple[str, str, str, dict]] = []
    chain = lambda start, *rels: {"kind": "chain", "start": start, "relations": list(rels)}  # noqa: E731
    for p in people:
        qs.append(("nq", f"where was {p} born?", born_city[p], chain(p, "birthplace")))
        qs.append(("popqa", f"What is {p}'s occupation?", job[p], chain(p, "occupation")))
        if p in spouse:
            qs.append(("triviaqa", f"Who did {p} marry?", spouse[p], chain(p, "spouse")))
    for f in films:
        d = director[f]
        qs.append(("nq", f"who directed {f.lower()}?", d, chain(f, "director")))
        qs.append(
            (
                "triviaqa",
                f"In which year was the film {f} released?",
                str(film_year[f]),
                chain(f, "film_year"),
            )
        )
        qs.append(("hotpotqa", f"In what city was the director of {f} born?", born_city[d],
                   chain(f, "director", "birthplace")))  # fmt: skip
        if d in spouse:
            qs.append(
                (
                    "2wiki",
                    f"Who is the spouse of the director of {f}?",
                    spouse[d],
                    chain(f, "director", "spouse"),
                )
            )
        qs.append(("musique", f"In what country was the director of {f} born?", city_country[born_city[d]],
                   chain(f, "director", "birthplace", "country")))  # fmt: skip
        qs.append(("bamboogle", f"In what year was the director of {f} born?", str(born_year[d]),
                   chain(f, "director", "birthyear")))  # fmt: skip
    for c in cities:
        k = city_country[c]
        qs.append(("popqa", f"In what country is {c}?", k, chain(c, "country")))
        if capital[k] == c:
            qs.append(("triviaqa", f"Which country has {c} as its capital?", k, chain(c, "capital_of")))
        qs.append(("bamboogle", f"What is the capital of the country where {c} is located?", capital[k],
                   chain(c, "country", "capital")))  # fmt: skip
        qs.append(("bamboogle", f"What currency is used in the country where {c} is located?", currency[k],
                   chain(c, "country", "currency")))  # fmt: skip
    for _ in range(3 * n_people):  # comparisons over random pairs, ties skipped
        a, b = rng.sample(people, 2)
        if born_year[a] != born_year[b]:
            first = a if born_year[a] < born_year[b] else b
            plan = {"kind": "compare", "entities": [a, b], "relation": "birthyear"}
            qs.append(("hotpotqa", f"Who was born first, {a} or {b}?", first, plan))
        f, g = rng.sample(films, 2)
        if film_year[f] != film_year[g]:
            first = f if film_year[f] < film_year[g] else g
            plan = {"kind": "compare", "entities": [f, g], "relation": "film_year"}
            qs.append(("2wiki", f"Which film came out first, {f} or {g}?", first, plan))

    seen: set[str] = set()
    questions = []
    for source, q, a, plan in qs:
        if q in seen:  # the same pair drawn twice
            continue
        seen.add(q)
        questions.append(QAItem(f"{source}-{len(questions):05d}", source, q, (a,), {"plan": plan}))
    return KnowledgeBase(passages_t, tuple(questions))

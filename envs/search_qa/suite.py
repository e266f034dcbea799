"""Search-QA environment: the Search-R1 protocol behind the suite's `EnvSuite` / `Env` contract (envs/base.py).

One episode: reset on a question; each step parses the reply (`<search>` / `<answer>`, PROTOCOL.md §1.4); a
search returns the top-k passages in `<information>`; an answer ends the episode with reward = normalised
exact match (EM) and success = EM == 1; text that parses as neither gets Search-R1's invalid message. The
episode ends after `max_turns` turns (reward 0 if no answer was given). Metric columns: the seven sources.

Data: the generated knowledge base (kb.py) by default; Search-R1/FlashRAG/HotpotQA files when configured.
Panels: per source, a seeded shuffle of the unique questions; the first `eval_per_source` go to "eval", the next
`train_per_source` to "train" (or train comes from `train_files`), from the sources in `train_sources` when set
(the paper trains on NQ + HotpotQA); written under `cache_dir/panels/`.

Expert: follows the question's plan, searching one entity per hop and reading the relation from the returned
passages (regular expressions over the knowledge base's own sentence forms). For real data, whose plans are
unknown, it is an oracle: it searches the supporting titles (or the question) and answers the gold answer.

Departures: retrieval errors (server down after retries) propagate as `RetrievalError` instead of becoming an
observation, so a failed call is never a zero reward (DESIGN.md §11).
Run: `python -m benchmarks.env_search_qa` or `make_suite("search_qa")` from envs.registry.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from envs.base import (
    Env,
    EnvSuite,
    Observation,
    ParsedAction,
    StepResult,
    Task,
    TaskPanel,
    Turn,
    atomic_write_text,
)
from envs.search_qa import data as data_mod
from envs.search_qa import kb as kb_mod
from envs.search_qa import protocol
from envs.search_qa.config import SearchQAConfig, SearchQAError
from envs.search_qa.retrievers import make_retriever

# ----------------------------------------------------------------------------------------------------------
# the episode


class SearchQAEnv(Env):
    def __init__(self, suite: SearchQASuite):
        self.suite = suite
        self.task: Task | None = None
        self.turn = 0
        self.done = True
        # (query, retrieved contents) of each search so far: what the expert reads
        self.searches: list[tuple[str, list[str]]] = []

    def reset(self, task_id: str) -> Observation:
        self.task = self.suite.task(task_id)
        self.turn, self.done, self.searches = 0, False, []
        return Observation(f"Question: {self.task.instruction}")

    def step(self, text: str) -> StepResult:
        if self.task is None:
            raise RuntimeError("SearchQAEnv.step called before reset")  # a caller bug, not model output
        act = protocol.parse_reply(text)
        valid = act.kind != "invalid"
        # info["action"] is the canonical action (what a rollout stores as Turn.action for the history window)
        action = f"<{act.kind}>{act.content}</{act.kind}>" if valid else act.content
        if self.done:  # finished episodes keep stepping (PROTOCOL.md §1.2); nothing changes
            return StepResult(Observation(""), 0.0, True, False, valid, {"action": action, "kind": act.kind})
        reward, success, answered = 0.0, False, False
        if act.kind == "search":  # a RetrievalError propagates before any state changes
            hits = self.suite.retriever.retrieve([act.content], self.suite.cfg.topk)[0]
            contents = [h.contents for h in hits]
            self.searches.append((act.content, contents))
            obs = protocol.information(contents)
        elif act.kind == "answer":
            reward = protocol.exact_match(act.content, self.task.meta["answers"])
            success, answered, obs = reward >= 1.0, True, ""
        else:
            obs = protocol.INVALID_MESSAGE
        self.turn += 1
        self.done = answered or self.turn >= self.suite.cfg.max_turns
        info = {"action": action, "kind": act.kind, "data_source": self.task.category, "turn": self.turn}
        if answered:
            info["answer"] = act.content
        info["em"] = reward
        return StepResult(Observation(obs), reward, self.done, success, valid, info)


# ----------------------------------------------------------------------------------------------------------
# the suite


class SearchQASuite(EnvSuite):
    name = "search_qa"
    columns = protocol.SOURCES

    def __init__(self, cfg: SearchQAConfig | None = None, cache_dir: str | Path = ".cache/envs/search_qa"):
        self.cfg = cfg = cfg or SearchQAConfig()
        self.cache_dir = Path(cache_dir)
        self.max_turns, self.history_length, self.invalid_penalty = (
            cfg.max_turns,
            cfg.history_length,
            cfg.invalid_penalty,
        )
        eval_items, train_items, passages = self._load()
        self._items = {it.qid: it for it in [*eval_items, *train_items]}
        self._panels = {
            "eval": TaskPanel(self.name, "eval", tuple(it.qid for it in eval_items)),
            "train": TaskPanel(self.name, "train", tuple(it.qid for it in train_items)),
        }
        self.passages = passages
        self.retriever = make_retriever(cfg, passages)
        self._write_cache()

    # ---- data
    def _load(self):
        cfg = self.cfg
        if cfg.eval_files and cfg.source != "generated":
            pool = data_mod.load_questions(cfg.eval_files, cfg.default_source)
            train_pool = (
                data_mod.load_questions(cfg.train_files, cfg.default_source) if cfg.train_files else []
            )
            if cfg.corpus_path:
                passages = data_mod.load_corpus(cfg.corpus_path)
            else:
                passages = data_mod.passages_of([*pool, *train_pool])
        elif cfg.train_files and cfg.source != "generated":
            raise SearchQAError("search_qa.train_files is set but eval_files is not; set both or neither")
        else:
            kb = kb_mod.generate(cfg.kb_people, cfg.seed)
            pool, train_pool = list(kb.questions), []
            passages = data_mod.load_corpus(cfg.corpus_path) if cfg.corpus_path else list(kb.passages)
        eval_items, rest = self._split(pool, cfg.eval_per_source)
        if train_pool:
            eval_q = {it.question for it in eval_items}
            rest = [it for it in train_pool if it.question not in eval_q]  # never overlapping
        if cfg.train_sources:
            present = {it.source for it in rest}
            missing = [s for s in cfg.train_sources if s not in present]
            if missing:
                raise SearchQAError(f"search_qa.train_sources names {missing} but the train pool has no question "
                                    f"of them (its sources: {sorted(present)})")  # fmt: skip
            rest = [it for it in rest if it.source in cfg.train_sources]
        train_items, _ = self._split(rest, cfg.train_per_source, shuffle=not train_pool)
        return eval_items, train_items, passages

    def _split(self, items, per_source: int, shuffle: bool = True):
        """Per source (Table 1 order first, then any others), take `per_source` items after a seeded shuffle."""
        by_source: dict[str, list] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        for it in items:
            if (it.source, it.question) not in seen:  # a question asked twice counts once
                seen.add((it.source, it.question))
                by_source[it.source].append(it)
        order = [s for s in protocol.SOURCES if s in by_source] + sorted(
            set(by_source) - set(protocol.SOURCES)
        )
        taken, rest = [], []
        for s in order:
            group = by_source[s][:]
            if shuffle:
                random.Random(f"{self.cfg.seed}-{s}").shuffle(group)
            taken += group[:per_source]
            rest += group[per_source:]
        return taken, rest

    def _write_cache(self) -> None:
        """Write panels (refusing to overwrite a different one silently) and the corpus for the server."""
        for split, panel in self._panels.items():
            path = self.cache_dir / "panels" / f"{split}.json"
            if path.is_file():
                old = TaskPanel.read(path)
                if old.content_hash != panel.content_hash:
                    raise SearchQAError(f"{path} holds a different {split} panel (config changed?); "
                                        "use another cache_dir or delete the file")  # fmt: skip
            else:
                panel.write(path)
        corpus = (
            self.cache_dir / "corpus.jsonl"
        )  # generated/context corpora only; a given corpus is not copied
        if self.passages and self.cfg.corpus_path is None:
            text = data_mod.corpus_text(self.passages)
            if not corpus.is_file() or corpus.read_text(encoding="utf-8") != text:
                atomic_write_text(corpus, text)

    # ---- EnvSuite
    def panel(self, split: str) -> TaskPanel:
        if split not in self._panels:
            raise SearchQAError(f"unknown split {split!r}; valid choices: {', '.join(self._panels)}")
        return self._panels[split]

    def task(self, task_id: str) -> Task:
        it = self._items.get(task_id)
        if it is None:
            raise KeyError(f"unknown search_qa task id {task_id!r}")
        return Task(it.qid, it.source, it.question, {"answers": it.answers, "plan": it.extra.get("plan")})

    def make_env(self) -> SearchQAEnv:
        return SearchQAEnv(self)

    @staticmethod
    def parse_action(text: str) -> ParsedAction:
        return protocol.parse_action(text)

    def prompt(self, task: Task, history: Sequence[Turn], observation: Observation, step: int) -> str:
        return protocol.render_prompt(task.instruction, history, observation.text, step, self.history_length)

    def random_action(self, env: Env, observation: Observation, rng) -> str:
        """A random valid action (no admissible list in this protocol): search or answer a random passage title."""
        title = protocol.split_contents(rng.choice(self.passages)[1])[0]
        tag = rng.choice(("search", "answer"))
        return f"<think>guess</think><{tag}>{title}</{tag}>"

    def copied_spans(self, reply: str) -> list[str]:
        """The search query or the answer (entity names and values the passages or the question hold)."""
        act = protocol.parse_reply(reply)
        return [act.content.strip()] if act.kind in ("search", "answer") and act.content.strip() else []

    def expert_action(self, env: Env) -> str:
        assert isinstance(env, SearchQAEnv) and env.task is not None
        return expert_reply(env.task, env.searches, quote=self.cfg.expert_think == "quote")


# ----------------------------------------------------------------------------------------------------------
# the expert: reads relations from the passages it retrieved


# Sentence forms of kb.py, with {e} the entity; group 1 is the value.
_RELATIONS: dict[str, str] = {
    "birthplace": r"{e} was born in \d+ in ([^.]+)\.",
    "birthyear": r"{e} was born in (\d+)",
    "occupation": r"{e} is an? ([^.]+)\.",
    "spouse": r"{e} married ([^.]+)\.",
    "director": r"{e} is a \d+ film directed by ([^.]+)\.",
    "film_year": r"{e} is a (\d+) film",
    "country": r"{e} is a city in ([^.]+)\.",
    "capital": r"{e} is a country\. Its capital is ([^.]+)\.",
    "currency": r"{e} is a country\..*?Its currency is the ([^.]+)\.",
    "capital_of": r"(\w+) is a country\. Its capital is {e}\.",
}


def _query(entity: str, relation: str, instruction: str) -> str:
    """The search for `relation` of `entity`, in the question's own spelling of it when the question names it
    (NQ-style questions are lowercased: "who directed the lost harbor?" searches "the lost harbor", a span a
    policy can copy; BM25 lowercases anyway, so the results are the same)."""
    at = instruction.lower().find(entity.lower())
    if at >= 0:
        entity = instruction[at : at + len(entity)]
    return f"capital {entity}" if relation == "capital_of" else entity


def read_evidence(contents: Sequence[str], entity: str, relation: str) -> tuple[str, str] | None:
    """(value, the passage sentence it was read from) for `relation` of `entity`, or None."""
    pattern = re.compile(_RELATIONS[relation].replace("{e}", re.escape(entity)))
    for doc in contents:
        m = pattern.search(doc.replace("\n", " "))
        if m:
            sentence = m.group(0).strip()
            return m.group(1).strip(), sentence if sentence.endswith(".") else f"{sentence}."
    return None


def _say(think: str, tag: str, content: str) -> str:
    """The expert's reply, spaced as the instruction's own examples (`<search> query </search>`, `<answer> Beijing
    </answer>`): with the space, a copied span tokenizes as it does in the question and the passages (byte-level
    BPE joins a word to its leading space), so a policy copies tokens instead of re-spelling the first word.
    The parser strips the padding (PROTOCOL.md §1.4), so the action and the reward are the same either way."""
    return f"<think>{think}</think><{tag}> {content} </{tag}>"


def expert_reply(task: Task, searches: list[tuple[str, list[str]]], quote: bool = False) -> str:
    """The expert's next reply given the searches made so far in this episode. With `quote` its think first
    copies the passage sentences it read values from (`expert_think: quote`); the actions are the same."""
    plan = task.meta.get("plan") or {"kind": "oracle", "queries": [task.instruction]}
    done = {q: docs for q, docs in searches}
    if plan["kind"] == "oracle":  # real data: search the supporting titles, then give the gold answer
        for q in plan["queries"][:2]:
            if q not in done:
                return _say(f"I need information about {q}.", "search", q)
        return _say("The passages contain the answer.", "answer", task.meta["answers"][0])
    said = ""  # the evidence quoted so far in this reply
    if plan["kind"] == "compare":
        values = []
        for entity in plan["entities"]:
            if entity not in done:
                return _say(f"{said}I need the year of {entity}.", "search", entity)
            found = read_evidence(done[entity], entity, plan["relation"])
            values.append(found and found[0])
            said += f"{found[1]} " if quote and found else ""
        if any(v is None for v in values):
            return _say(f"{said}I could not find both years.", "answer", plan["entities"][0])
        first = min(zip(map(int, values), plan["entities"]))[1]
        return _say(f"{said}{first} comes first.", "answer", first)
    entity = plan["start"]  # chain: each relation's value is the next entity to search
    for relation in plan["relations"]:
        q = _query(entity, relation, task.instruction)
        if q not in done:
            return _say(f"{said}I need the {relation.replace('_', ' ')} of {entity}.", "search", q)
        found = read_evidence(done[q], entity, relation)
        if found is None:
            return _say(
                f"The {relation.replace('_', ' ')} of {entity} is not in the results.", "answer", entity
            )
        entity, said = found[0], f"{found[1]} " if quote else ""
    return _say(said.strip() if quote else f"The answer is {entity}.", "answer", entity)

"""Search-QA suite: panels, episodes, rewards, expert, real-data loaders, retrievers (BM25, dense)."""

import dataclasses
import json
import random
import re
from collections import defaultdict

import pandas as pd
import pytest

from envs.base import TaskPanel, Turn
from envs.registry import make_suite
from envs.search_qa import SOURCES, SearchQAConfig, SearchQAError, SearchQASuite
from envs.search_qa import kb as kb_mod
from envs.search_qa.data import load_questions
from envs.search_qa.retrievers import BM25Retriever, DenseRetriever

SMALL = SearchQAConfig(kb_people=120, eval_per_source=20, train_per_source=40)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return SearchQASuite(SMALL, tmp_path_factory.mktemp("sqa"))


def run_episode(suite, task_id, policy):
    env = suite.make_env()
    env.reset(task_id)
    for _ in range(suite.max_turns + 2):
        res = env.step(policy(env))
        if res.done:
            return res
    raise AssertionError("episode did not end within max_turns")


def test_panels_fixed_disjoint_and_cached(suite, tmp_path_factory):
    ev, tr = suite.panel("eval"), suite.panel("train")
    assert len(ev.task_ids) == 7 * 20 and len(set(ev.task_ids)) == len(ev.task_ids)
    assert not set(ev.task_ids) & set(tr.task_ids)
    assert not {suite.task(t).instruction for t in ev.task_ids} & {
        suite.task(t).instruction for t in tr.task_ids
    }
    assert [suite.task(t).category for t in ev.task_ids[::20]] == list(SOURCES)  # Table 1 order
    assert TaskPanel.read(suite.cache_dir / "panels" / "eval.json") == ev
    again = SearchQASuite(SMALL, suite.cache_dir)  # same config, same cache: same panels
    assert again.panel("eval").content_hash == ev.content_hash
    with pytest.raises(SearchQAError, match="different eval panel"):
        SearchQASuite(SearchQAConfig(kb_people=120, eval_per_source=20, seed=1), suite.cache_dir)
    with pytest.raises(SearchQAError, match="valid choices"):
        suite.panel("test")


def test_train_sources_give_the_paper_s_mix(suite, tmp_path):
    cfg = dataclasses.replace(SMALL, train_sources=("nq", "hotpotqa"))
    paper = SearchQASuite(cfg, tmp_path)
    tr = paper.panel("train").task_ids
    per_source = defaultdict(int)
    for t in tr:
        per_source[paper.task(t).category] += 1
    assert dict(per_source) == {"nq": 40, "hotpotqa": 40}
    assert paper.panel("eval") == suite.panel("eval")  # the eval panel keeps all seven sources
    assert set(tr) <= set(suite.panel("train").task_ids)  # the same questions as the all-source panel's
    with pytest.raises(SearchQAError, match=r"names \['nq_open'\] but the train pool has no question"):
        SearchQASuite(dataclasses.replace(SMALL, train_sources=("nq", "nq_open")), tmp_path / "other")
    with pytest.raises(SearchQAError, match="distinct sources"):
        SearchQAConfig(train_sources=("nq", "nq"))


def test_a_world_larger_than_its_film_titles_gets_longer_titles():
    """240 "The Adjective Noun" titles name the default world's films; a larger world adds "of <Name>" (it used to
    loop forever looking for a 241st title) and keeps every film, person and question distinct."""
    small, big = kb_mod.generate(240, 0), kb_mod.generate(600, 0)
    small_films = [p for _, p in small.passages if " film directed by " in p]
    big_films = [p for _, p in big.passages if " film directed by " in p]
    assert len(small_films) == 240 and not any(" of " in p.split("\n")[0] for p in small_films)
    assert len(big_films) == 600 and all(re.match(r'"The \w+ \w+ of \w+"\n', p) for p in big_films)
    assert len({p for _, p in big.passages}) == len(big.passages)
    assert len({q.question for q in big.questions}) == len(big.questions)
    with pytest.raises(SearchQAError, match=r"no room for 3 distinct names .*lower search_qa.kb_people"):
        kb_mod._names(random.Random(0), 3, lambda: "Kamiro", set())


def test_a_partial_evaluation_reads_every_source_alike(suite):
    from collections import Counter

    from envs.base import round_robin
    from sdar.evaluate import eval_task_ids

    cat = lambda t: suite.task(t).category  # noqa: E731
    panel = suite.panel("eval").task_ids
    assert [cat(t) for t in panel[:21]] == ["nq"] * 20 + ["triviaqa"]  # the panel lists its sources in blocks
    assert Counter(map(cat, eval_task_ids(suite, 64))) == {s: 10 if s == "nq" else 9 for s in SOURCES}
    assert [cat(t) for t in eval_task_ids(suite, 8)] == [*SOURCES, "nq"]
    assert sorted(eval_task_ids(suite, 0)) == sorted(panel)  # 0 reads the whole panel
    assert round_robin(["a1", "a2", "b1", "b2", "c1"], lambda t: t[0]) == ["a1", "b1", "c1", "a2", "b2"]
    cycling = ["a1", "b1", "a2", "b2"]
    assert round_robin(cycling, lambda t: t[0]) == cycling  # a panel that already cycles keeps its order


def test_registry_builds_the_suite(tmp_path):
    s = make_suite("search_qa", SearchQAConfig(kb_people=40, eval_per_source=2, train_per_source=2), tmp_path)
    assert (
        s.name == "search_qa" and s.columns == SOURCES and (tmp_path / "search_qa" / "corpus.jsonl").is_file()
    )


def test_expert_solves_the_eval_panel(suite):
    em = defaultdict(list)
    for tid in suite.panel("eval").task_ids:
        em[suite.task(tid).category].append(run_episode(suite, tid, suite.expert_action).reward)
    per_source = {s: sum(v) / len(v) for s, v in em.items()}
    assert list(per_source) == list(SOURCES)
    assert min(per_source.values()) >= 0.95, per_source


def test_quoting_expert_copies_the_evidence_and_acts_the_same(suite):
    """`expert_think: quote`: the same actions as the default expert, and every think after a search starts
    with a sentence that appears word for word in a passage the episode's searches returned."""
    quoting = SearchQASuite(dataclasses.replace(SMALL, expert_think="quote"), suite.cache_dir)
    split = re.compile(r"<think>(.*)</think>(.*)", re.S)
    for tid in suite.panel("eval").task_ids[::7]:
        plain, quoted = suite.make_env(), quoting.make_env()
        plain.reset(tid)
        quoted.reset(tid)
        for _ in range(suite.max_turns):
            (think_p, act_p), (think_q, act_q) = (
                split.fullmatch(suite.expert_action(plain)).groups(),
                split.fullmatch(quoting.expert_action(quoted)).groups(),
            )
            assert act_q == act_p
            if quoted.searches:
                passages = " ".join(d.replace("\n", " ") for _, docs in quoted.searches for d in docs)
                sentence = think_q.split(". ")[0].rstrip(".")
                assert sentence and sentence in passages and not think_p.startswith(sentence), (tid, think_q)
            done_p = plain.step(f"<think>{think_p}</think>{act_p}").done
            done_q = quoted.step(f"<think>{think_q}</think>{act_q}").done
            if done_p or done_q:
                break


def test_expert_searches_the_question_s_own_spelling(suite):
    """A policy can copy the first search from the question: NQ-style questions lowercase the film's title, and
    the expert searches it as written there (BM25 lowercases, so the results do not change)."""
    import re

    seen = 0
    for tid in suite.panel("eval").task_ids:
        task = suite.task(tid)
        env = suite.make_env()
        env.reset(tid)
        m = re.search(r"<search> (.*?) </search>", suite.expert_action(env))
        if m and task.category == "nq":
            seen += 1
            assert m.group(1) in task.instruction, (m.group(1), task.instruction)
    assert seen >= 10


def test_expert_copies_spans_token_for_token(suite):
    """The expert's queries and answers tokenize exactly as their source (the question, the retrieved passages)
    under a byte-level BPE like the tiny models', so imitating the expert is copying tokens: `<answer> X </answer>`
    keeps X's leading space, which `<answer>X</answer>` would drop (a different first token)."""
    import re

    from sdar.models import train_tokenizer

    tok = train_tokenizer([p[1] for p in suite.passages[:2000]], 800)
    space = tok(" ").input_ids

    def inside(reply: str) -> list[int]:
        x = tok(reply).input_ids
        tag = re.search(r"<(search|answer)>", reply).group(0)
        start, end = (
            x.index(tok.convert_tokens_to_ids(tag)) + 1,
            x.index(tok.convert_tokens_to_ids(tag[0] + "/" + tag[1:])),
        )
        # without the padding space before the closing tag
        return x[start : end - 1] if x[end - 1 : end] == space else x[start:end]

    def occurs(span: list[int], text: str) -> bool:
        x = tok(text).input_ids
        return any(x[i : i + len(span)] == span for i in range(len(x) - len(span) + 1))

    copied = {"search": 0, "answer": 0}
    for tid in suite.panel("eval").task_ids[::4]:
        task, env = suite.task(tid), suite.make_env()
        obs = env.reset(tid)
        for _ in range(suite.max_turns):
            reply = suite.expert_action(env)
            kind, span = re.search(r"<(search|answer)> ?(.*?) ?</", reply).groups()
            source = task.instruction if kind == "search" else obs.text
            if f" {span}" in source:  # a span written in its source (not "capital X", not a derived answer)
                assert occurs(inside(reply), source), (reply, source)
                copied[kind] += 1
            res = env.step(reply)
            obs = res.observation
            if res.done:
                break
    assert min(copied.values()) >= 10, copied


def test_episode_rules(suite):
    tid = suite.panel("eval").task_ids[0]
    env = suite.make_env()
    obs = env.reset(tid)
    assert obs.text.startswith("Question: ") and obs.admissible == ()
    bad = env.step("I think the answer is Paris")
    assert not bad.valid_action and not bad.done and bad.reward == 0.0 and "invalid" in bad.observation.text
    found = env.step("<think>look</think><search>anything</search>")
    assert found.valid_action and found.observation.text.startswith("<information>Doc 1(Title: ")
    assert found.observation.text.count("Doc ") == 3  # top-3
    assert found.info["action"] == "<search>anything</search>" and found.info["kind"] == "search"
    prompt = suite.prompt(suite.task(tid), [Turn(obs.text, bad.info["action"]), Turn(bad.observation.text, found.info["action"])],
                          found.observation, 2)  # fmt: skip
    assert f"Step 2:<search>anything</search> {found.observation.text}" in prompt and "Step 1:" in prompt
    gold = suite.task(tid).meta["answers"][0]
    win = env.step(f"<answer> {gold.upper()}. </answer>")
    assert win.done and win.success and win.reward == 1.0 and win.info["data_source"] == "nq"
    after = env.step("<answer>x</answer>")  # finished envs keep stepping without effect
    assert after.done and after.reward == 0.0
    env.reset(tid)
    results = [env.step("<search>q</search>") for _ in range(suite.max_turns)]
    assert [r.done for r in results] == [False] * (suite.max_turns - 1) + [True]
    assert results[-1].reward == 0.0 and not results[-1].success
    env.reset(tid)
    wrong = env.step("<answer>certainly not this</answer>")
    assert wrong.done and wrong.reward == 0.0 and not wrong.success


def test_random_policy_is_far_below_the_expert(suite):
    import random

    rng = random.Random(0)
    words = sorted({w for _, c in suite.passages[:200] for w in c.split()})
    policy = lambda env: rng.choice(  # noqa: E731
        [f"<search>{rng.choice(words)}</search>", f"<answer>{rng.choice(words)}</answer>", "no tags"]
    )
    rewards = [run_episode(suite, tid, policy).reward for tid in suite.panel("eval").task_ids]
    assert sum(rewards) / len(rewards) < 0.1


# ----------------------------------------------------------------------------------------------------------
# real data


def test_hotpotqa_sample_loads_through_the_real_loader(shared_data, tmp_path):
    path = shared_data / "hotpotqa" / "distractor_sample.jsonl"
    items = load_questions([path], "hotpotqa")
    assert len(items) == 100 and {it.source for it in items} == {"hotpotqa"}
    cfg = SearchQAConfig(eval_files=(str(path),), eval_per_source=60, train_per_source=100)
    s = SearchQASuite(cfg, tmp_path)
    assert len(s.panel("eval").task_ids) == 60 and len(s.panel("train").task_ids) == 40
    assert 900 <= len(s.passages) <= 1000  # the 10 context paragraphs of each question, de-duplicated
    tid = s.panel("eval").task_ids[0]
    res = run_episode(s, tid, s.expert_action)  # oracle expert: searches the supporting titles
    assert res.success
    env = s.make_env()
    env.reset(tid)
    title = s.task(tid).meta["plan"]["queries"][0]
    assert f"(Title: {title})" in env.step(f"<search>{title}</search>").observation.text


def test_search_r1_parquet_and_flashrag_jsonl(tmp_path):
    rows = [
        {"data_source": "nq", "prompt": [{"role": "user", "content": "Answer ... Question: who wrote hamlet"}],
         "reward_model": {"style": "rule", "ground_truth": {"target": ["Shakespeare", "William Shakespeare"]}},
         "extra_info": {"index": 7}},
        {"data_source": "2wikimultihopqa", "prompt": [{"role": "user", "content": "Question: which is older?"}],
         "reward_model": {"style": "rule", "ground_truth": {"target": ["A"]}}, "extra_info": {"index": 8}},
    ]  # fmt: skip
    pd.DataFrame(rows).to_parquet(tmp_path / "test.parquet")
    (tmp_path / "popqa").mkdir()
    (tmp_path / "popqa" / "dev.jsonl").write_text(
        json.dumps({"id": "p1", "question": "who is x", "golden_answers": ["y"]}) + "\n"
    )
    items = load_questions([tmp_path / "test.parquet", tmp_path / "popqa" / "dev.jsonl"], "nq")
    assert [(it.source, it.question, it.answers) for it in items] == [
        ("nq", "who wrote hamlet?", ("Shakespeare", "William Shakespeare")),
        ("2wiki", "which is older?", ("A",)),
        ("popqa", "who is x?", ("y",)),
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"id": "0", "contents": '"Hamlet"\nHamlet is a play by Shakespeare.'}) + "\n"
    )
    cfg = SearchQAConfig(
        eval_files=(str(tmp_path / "test.parquet"),), corpus_path=str(corpus), eval_per_source=5
    )
    s = SearchQASuite(cfg, tmp_path / "cache")
    env = s.make_env()
    env.reset("nq-7")
    assert (
        env.step("<search>hamlet</search>").observation.text
        == "<information>Doc 1(Title: Hamlet) Hamlet is a play by Shakespeare.</information>"
    )
    assert env.step("<answer>william shakespeare</answer>").success


def test_missing_data_fails_clearly(tmp_path):
    with pytest.raises(SearchQAError, match="not found.*huggingface-cli"):
        SearchQASuite(SearchQAConfig(eval_files=(str(tmp_path / "nope.parquet"),)), tmp_path)
    with pytest.raises(SearchQAError, match="must be >= 1"):
        SearchQAConfig(topk=0)


# ----------------------------------------------------------------------------------------------------------
# retrievers

PASSAGES = [("a", '"Paris"\nParis is the capital of France.'), ("b", '"Lyon"\nLyon is a city on the Rhone.'),
            ("c", '"Rome"\nRome is the capital of Italy.'), ("d", '"Oslo"\nOslo lies in Norway.')]  # fmt: skip


def test_bm25_ranks_and_handles_unknown_words():
    r = BM25Retriever(PASSAGES)
    assert [h.id for h in r.retrieve(["capital of Italy"], 2)[0]] == ["c", "a"]
    assert len(r.retrieve(["zzzz qqqq"], 3)[0]) == 3  # no known word: still k passages, never an error
    assert len(r.retrieve(["Paris"], 10)[0]) == 4


def test_dense_retriever_with_a_tiny_encoder_built_in_code(tmp_path):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = sorted(
        {w.strip('."').lower() for _, c in PASSAGES for w in c.split()} | {"query", "passage", ":"}
    )
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    fast.save_pretrained(tmp_path)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(cfg).save_pretrained(tmp_path)
    r = DenseRetriever(PASSAGES, tmp_path)
    assert r.matrix.shape == (4, 32)
    hits = r.retrieve(["Oslo lies in Norway.", "Paris"], 4)
    assert [len(h) for h in hits] == [4, 4] and hits[0][0].score >= hits[0][-1].score
    assert sorted(h.id for h in hits[0]) == ["a", "b", "c", "d"]
    with pytest.raises(SearchQAError, match="config.json"):
        DenseRetriever(PASSAGES, tmp_path / "missing")

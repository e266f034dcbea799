"""Configuration of the WebShop environment: every default lives here (STYLE.md rule 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class WebshopConfig:
    """WebShop settings (PROTOCOL.md §4; SDAR scripts: 15 turns, history 2, invalid penalty 0.1)."""

    source: Literal["auto", "real", "generated"] = "auto"
    """Catalogue: `real` requires product_file and attr_file (the paper profile), `generated` ignores them,
    `auto` uses the real files when both are set and the generated catalogue otherwise."""
    product_file: str | None = None
    """Real WebShop products (`items_shuffle_1000.json` or `items_shuffle.json`); None = generated catalogue."""
    attr_file: str | None = None
    """Real WebShop attributes and synthetic instructions (`items_ins_v2_1000.json`); needed with product_file."""
    num_products: int | None = 1000
    """Generated catalogue size; with real files, the first N products (None = all), upstream `num_products`."""
    goals_per_product: int = 2
    """Generated goals per product (real files: one per combination of option values, as upstream)."""
    seed: int = 0
    """Seed of the generated catalogue and of every price draw (goal prices never depend on process state)."""
    max_turns: int = 15
    """Turns per episode (verl-agent `env.max_steps` for WebShop); the episode ends, unsuccessful, after them."""
    history_length: int = 2
    """(observation, action) pairs shown in the prompt (PROTOCOL.md §1.3)."""
    prompt_style: Literal["verl_agent", "compact"] = "verl_agent"
    """Prompt template: verl-agent's (official) or `compact` (envs.base.compact_prompt: the same fields without
    the boilerplate, past turns as their actions only; 2-3x fewer tokens, for the CPU mini profile)."""
    invalid_penalty: float = 0.1
    """Penalty coefficient for a malformed reply, applied by the trainer (PROTOCOL.md §1.5)."""
    reward: Literal["success", "score"] = "success"
    """Episode reward at the end. `success` (verl-agent): 10 when the purchase scores exactly 1.0, else 0.
    `score` (a departure for tiny models, docs/protocol_parity.md): 10 x the purchase's score, so a purchase
    with the right type and some of the attributes, options or price earns part of the reward. Success (Acc)
    and Score are measured the same way under both."""
    results_per_page: int = 10
    """Products per results page (upstream PRODUCT_WINDOW)."""
    search_return_n: int = 50
    """Products a search returns in all (upstream SEARCH_RETURN_N)."""
    eval_panel_size: int = 128
    """Goals in the eval panel: the first N of the shuffled goal list (verl-agent validates on 128 episodes)."""
    train_offset: int = 500
    """Index of the first training goal (verl-agent: val = goals[:500], train = goals[500:])."""
    train_panel_size: int | None = None
    """Goals in the train panel from train_offset on (None = all the rest)."""
    noun_tagger: str = "auto"
    """Nouns for the type reward: "auto" (a spaCy English model if installed, else rules), "rules", or a spaCy
    model name (upstream: en_core_web_lg)."""
    max_prompt_chars: int = 13000
    """Longer prompts fall back to the no-history template (verl-agent)."""
    expert: Literal["target", "first_match"] = "target"
    """The warm start's demonstrator (upstream has none). `target` pages to the goal's own product (it knows the
    ASIN); `first_match` clicks the first result a purchase with the goal's options would score 1.0 on, which
    is the top result for ~60 % of generated goals. Several results often share the target's title, and only
    `first_match`'s choice can be learnt from what the page shows (the mini profile's setting)."""
    product_links: Literal["asin", "index"] = "asin"
    """How a results page names its products. `asin` (upstream): by ASIN, clicked as `click[<asin>]`. `index`
    (a departure for tiny models, docs/protocol_parity.md): by position on the page, shown and clicked as
    `item 1`, `item 2`, ...; an ASIN click there is a no-op. A tiny model learns to pick one of a few closed
    names, as ALFWorld's objects, where no warm start so far learnt to copy a 10-character ASIN from the page."""

    def __post_init__(self):
        if (self.product_file is None) != (self.attr_file is None):
            raise ValueError("webshop: product_file and attr_file go together (real WebShop data needs both)")
        if self.product_file is None and not self.num_products:
            raise ValueError("webshop: a generated catalogue needs num_products >= 1")
        if self.eval_panel_size > self.train_offset:
            raise ValueError("webshop: eval_panel_size must not exceed train_offset (panels would overlap)")
        if self.max_turns < 1 or self.results_per_page < 1 or self.search_return_n < 1:
            raise ValueError("webshop: max_turns, results_per_page and search_return_n must be >= 1")

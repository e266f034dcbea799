"""WebShop behind the EnvSuite interface: panels, parser, prompt, expert, episodes (DESIGN.md §5-§6).

- Parser (`parse_action`, verl-agent `webshop_projection`): lowercase, take the text between the first
  `<action>` and the first `</action>`; with a tag missing the action is the last 20 characters and invalid;
  also invalid without both `<think>` and `</think>` (checked on the original text) or with a CJK character.
- Rewards (PROTOCOL.md §1.5): `reward = 10` when the episode ends with a purchase scoring exactly 1.0, else 0
  (`reward: score`, a departure for tiny models: 10 x the purchase's score);
  the raw score is `info["task_score"]` and the score parts are in `info["score_parts"]`. Score = mean
  task_score x 100, success (Acc) = share of episodes with task_score == 1.0.
- Episodes end with `Buy Now` or after `max_turns` turns (`info["truncated"]`, score 0). Steps after the end
  are no-ops with reward 0.
- Panels: goals are shuffled once (Random(233), as upstream); eval = the first `eval_panel_size`, train = from
  `train_offset` on. Both are written under `cache_dir/panels/` with their content hash.
- Expert: privileged (knows the goal): searches the instruction's key phrase, pages through results to the
  target (`expert: target`) or to the first result that scores 1.0 with the goal's options (`first_match`),
  falls back to a search by the product name, picks the goal's options, buys.
- Product links (`product_links`): by ASIN as upstream, or (`index`, a departure for tiny models) by position
  on the results page, `item 1` ... `item k`, mapped to the ASIN before the browser sees the click.

Run: `python -m benchmarks.env_webshop` (steps/s and expert / random success on the eval panel).
"""

from __future__ import annotations

import re
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
    compact_prompt,
)
from envs.webshop.catalogue import SKILL_CATEGORIES, Goal, Product, generate_catalogue, load_real
from envs.webshop.config import WebshopConfig
from envs.webshop.engine import BACK, BUY, NEXT, PREV, SUB_PAGES, Browser, PageState, SearchIndex, agent_view
from envs.webshop.engine import admissible as format_admissible
from envs.webshop.reward import (
    FUZZY_THRESHOLD,
    NounTagger,
    fuzzy_score,
    normalize_color,
    purchase_score,
    type_reward,
)

_CJK = re.compile(r"[\u4e00-\u9fff]")
_REQUEST = re.compile(
    r"^(?:i(?:'m| am)? (?:need|want|would like|looking for)|looking for|find me)\s+(?:an? |some |the )?"
)

# verl-agent's WebShop templates (agent_system/environments/prompts/webshop.py), stripped of outer newlines.
_INSTRUCTIONS = (
    "Your admissible actions of the current situation are: \n[\n{available_actions}\n].\n\n"
    "Now it's your turn to take one action for the current step.\n"
    "You should first reason step-by-step about the current situation, then think carefully which admissible "
    "action best advances the shopping goal. This reasoning process MUST be enclosed within <think> </think> "
    "tags. \nOnce you've finished your reasoning, you should choose an admissible action for current step and "
    "present it within <action> </action> tags."
)
TEMPLATE_NO_HIS = (
    "You are an expert autonomous agent operating in the WebShop e\u2011commerce environment. \n"
    "Your task is to: {task_description}.\n"
    "Your current observation is: {current_observation}.\n" + _INSTRUCTIONS
)
TEMPLATE = (
    "You are an expert autonomous agent operating in the WebShop e\u2011commerce environment.\n"
    "Your task is to: {task_description}.\n"
    "Prior to this step, you have already taken {step_count} step(s). Below are the most recent "
    "{history_length} observations and the corresponding actions you took: {action_history}\n"
    "You are now at step {current_step} and your current observation is: {current_observation}.\n"
    + _INSTRUCTIONS
)


class WebshopEnv(Env):
    """One WebShop episode. State: the page, the turn counter and, once bought, the score."""

    def __init__(self, suite: WebshopSuite):
        self.suite = suite
        self.goal: Goal | None = None
        self.state = PageState()
        self.turn = 0
        self.done = False
        self.score = 0.0
        self.searches: list[str] = []
        self._obs = Observation("")

    def reset(self, task_id: str) -> Observation:
        if task_id not in self.suite.goals:
            raise KeyError(f"webshop: unknown task id {task_id!r}")
        self.goal = self.suite.goals[task_id]
        self.state, self.turn, self.done, self.score, self.searches = PageState(), 0, False, 0.0, []
        self._obs = self._observe()
        return self._obs

    @property
    def observation(self) -> Observation:
        """The current observation (what the last reset/step returned)."""
        return self._obs

    def available_actions(self) -> dict:
        """Upstream `get_available_actions()`: `{has_search_bar, clickables}` (product links as shown)."""
        names = self.link_names()
        return {
            "has_search_bar": self.state.page == "search",
            "clickables": [names.get(c, c) for c in self.suite.browser.clickables(self.state)],
        }

    def link_names(self) -> dict[str, str]:
        """`product_links: index` on a results page: {lowercased ASIN of the k-th product: "item k"}; else {}."""
        if self.suite.cfg.product_links != "index" or self.state.page != "results":
            return {}
        return {a.lower(): f"item {k}" for k, a in enumerate(self.suite.browser.page_asins(self.state), 1)}

    def _observe(self) -> Observation:
        raw = self.suite.browser.render(self.state, self.goal.instruction, self.score, self.link_names())
        avail = self.available_actions()
        return Observation(agent_view(raw, self.goal.instruction), format_admissible(**avail))

    def _to_browser(self, action: str) -> str:
        """The browser's action for what the agent wrote: a product link's name becomes its ASIN, and with
        `product_links: index` an ASIN typed on a results page becomes a no-op (it is not on the page)."""
        names = self.link_names()
        m = re.fullmatch(r"\s*click\s*\[(.*)\]\s*", action, re.S)
        if not names or m is None:
            return action
        arg = m.group(1).strip().lower()
        asins = {name: asin for asin, name in names.items()}
        if arg in asins:
            return f"click[{asins[arg]}]"
        return "" if arg in names else action

    def step(self, text: str) -> StepResult:
        if self.goal is None:
            raise RuntimeError("webshop: reset() before step()")
        parsed = self.suite.parse_action(text)
        info = {
            "action": parsed.action,
            "task_score": self.score,
            "won": False,
            "category": self.goal.category,
        }
        if self.done:
            info.update(action_effective=False, won=self.score == 1.0)
            return StepResult(self._obs, 0.0, True, self.score == 1.0, parsed.valid, info)
        self.turn += 1
        if self.state.page == "search" and parsed.action.startswith("search"):
            self.searches.append(parsed.action)
        effective = self.suite.browser.step(self.state, self._to_browser(parsed.action))
        if self.state.page == "done":
            self.done = True
            parts = self.suite.score(self.goal, self.state.asin, list(self.state.options.values()))
            self.score = parts.total
            info["score_parts"] = parts.as_info(len(self.goal.attributes), len(self.goal.options))
            info["type_tagger"] = self.suite.tagger.name
        truncated = not self.done and self.turn >= self.suite.max_turns
        self.done = self.done or truncated
        success = self.done and self.score == 1.0
        info.update(task_score=self.score, won=success, action_effective=effective, truncated=truncated)
        self._obs = self._observe()
        dense = self.suite.cfg.reward == "score"
        reward = 10.0 * self.score if dense and self.done else 10.0 * success
        return StepResult(self._obs, reward, self.done, success, parsed.valid, info)


class WebshopSuite(EnvSuite):
    """The WebShop environment family: catalogue, goals, panels, prompt, parser and expert."""

    name = "webshop"
    columns = SKILL_CATEGORIES

    def __init__(self, cfg: WebshopConfig | None = None, cache_dir: str | Path = ".cache/envs/webshop"):
        self.cfg = cfg = cfg or WebshopConfig()
        self.cache_dir = Path(cache_dir)
        self.max_turns, self.history_length, self.invalid_penalty = (
            cfg.max_turns,
            cfg.history_length,
            cfg.invalid_penalty,
        )
        if cfg.product_file is not None and cfg.source != "generated":
            products, goals = load_real(
                cfg.product_file, cfg.attr_file, num_products=cfg.num_products, seed=cfg.seed
            )
        else:
            products, goals = generate_catalogue(cfg.num_products, cfg.goals_per_product, cfg.seed)
        self.products: dict[str, Product] = {p.asin: p for p in products}
        self.goals: dict[str, Goal] = {g.goal_id: g for g in goals}
        self.browser = Browser(
            self.products, SearchIndex(products, cfg.search_return_n), cfg.results_per_page
        )
        self.tagger = NounTagger(cfg.noun_tagger)
        self._matches: dict[tuple[str, str], bool] = {}  # (goal, asin) -> the first_match expert buys it
        order = [g.goal_id for g in goals]
        if len(order) <= cfg.train_offset:
            raise ValueError(f"webshop: {len(order)} goals, not more than train_offset={cfg.train_offset}")
        end = None if cfg.train_panel_size is None else cfg.train_offset + cfg.train_panel_size
        self._panels = {
            "eval": TaskPanel(self.name, "eval", tuple(order[: cfg.eval_panel_size])),
            "train": TaskPanel(self.name, "train", tuple(order[cfg.train_offset : end])),
        }
        for p in self._panels.values():
            path = self.cache_dir / "panels" / f"{p.split}_{p.content_hash[:12]}.json"
            if not path.exists():
                p.write(path)

    # ---- panels and tasks
    def panel(self, split: str) -> TaskPanel:
        if split not in self._panels:
            raise ValueError(f"webshop: unknown split {split!r}; valid choices: {', '.join(self._panels)}")
        return self._panels[split]

    def task(self, task_id: str) -> Task:
        g = self.goals[task_id]
        meta = {"asin": g.asin, "query": g.query, "product_category": g.product_category, "price_upper": g.price_upper,
                "attributes": list(g.attributes), "goal_options": [list(o) for o in g.options]}  # fmt: skip
        return Task(task_id, g.category, g.instruction, meta)

    def make_env(self) -> WebshopEnv:
        return WebshopEnv(self)

    def score(self, goal: Goal, asin: str, chosen: Sequence[str]):
        """WebShop's score of buying `asin` with option values `chosen` for `goal` (reward.py)."""
        p = self.products[asin]
        t = type_reward(p.query, p.product_category, self.tagger.nouns(p.title),
                        goal.query, goal.product_category, self.tagger.nouns(goal.name))  # fmt: skip
        return purchase_score(
            goal_attributes=goal.attributes, goal_options=goal.option_values, price_upper=goal.price_upper,
            price=p.price, chosen_options=chosen, product_attributes=p.attributes, title=p.title,
            bullets=p.bullets, description=p.description, type_=t,
        )  # fmt: skip

    # ---- parser and prompt
    @staticmethod
    def parse_action(text: str) -> ParsedAction:
        lower = text.lower()
        start, end = lower.find("<action>"), lower.find("</action>")
        if start == -1 or end == -1:
            return ParsedAction(lower[-20:], False)
        valid = "<think>" in text and "</think>" in text and _CJK.search(text) is None
        return ParsedAction(lower[start + len("<action>") : end].strip(), valid)

    def prompt(self, task: Task, history: Sequence[Turn], observation: Observation, step: int) -> str:
        recent = list(history)[-self.history_length :] if self.history_length > 0 else []
        if self.cfg.prompt_style == "compact":
            return compact_prompt(task.instruction, recent, observation.text, observation.admissible, step)
        actions = "\n".join(f"'{a}'," for a in observation.admissible)
        no_his = TEMPLATE_NO_HIS.format(
            task_description=task.instruction, current_observation=observation.text, available_actions=actions
        )
        if step == 0 or not recent:
            return no_his
        first = step - len(recent) + 1
        lines = "\n".join(
            f"[Observation {first + j}: '{t.observation}', Action {first + j}: '{t.action}']"
            for j, t in enumerate(recent)
        )
        text = TEMPLATE.format(
            task_description=task.instruction, step_count=step, history_length=len(recent), action_history=lines,
            current_step=step + 1, current_observation=observation.text, available_actions=actions,
        )  # fmt: skip
        return no_his if len(text) > self.cfg.max_prompt_chars else text

    def random_action(self, env: Env, observation: Observation, rng) -> str:
        """A uniformly drawn admissible action; `search[<your query>]` searches the instruction's key phrase."""
        action = rng.choice(list(observation.admissible))
        if action.startswith("search["):
            action = f"search[{self.key_phrase(env.goal.instruction).lower()}]"
        return f"<think>explore</think><action>{action}</action>"

    def copied_spans(self, reply: str) -> list[str]:
        """The search keywords or the clicked product id / option value; never a page button."""
        m = re.fullmatch(r"(search|click)\[(.+)\]", self.parse_action(reply).action)
        if m is None:
            return []
        arg = m.group(2).strip()
        buttons = {BACK, PREV, NEXT, BUY, *SUB_PAGES}
        if m.group(1) == "click" and (arg in buttons or re.fullmatch(r"item \d+", arg)):
            return []  # a page button or a product's position (`product_links: index`): nothing to copy
        return [arg]

    # ---- expert
    def expert_action(self, env: Env) -> str:
        action, why = self._expert(env)
        return f"<think>{why}</think><action>{action}</action>"

    @staticmethod
    def key_phrase(instruction: str) -> str:
        """The instruction without its option and price clauses: the expert's first search."""
        phrase = re.split(r" with |, and price lower than", instruction)[0].strip()
        return _REQUEST.sub("", phrase)

    def _expert(self, env: WebshopEnv) -> tuple[str, str]:
        s, goal = env.state, env.goal
        if s.page == "search":
            query = self.key_phrase(goal.instruction).lower()
            if f"search[{query}]" in env.searches:
                return f"search[{goal.name.lower()}]", "search by the product name"
            return f"search[{query}]", "search for the item"
        if s.page == "results":
            asins = self.browser.clickables(s)
            names = env.link_names()
            for asin in self.browser.page_asins(s):
                if self._wanted_item(goal, asin):
                    return f"click[{names.get(asin.lower(), asin.lower())}]", "this is the item"
            if NEXT in asins:
                return f"click[{NEXT}]", "not on this page"
            return f"click[{BACK}]", "not found, search again"
        if s.page in SUB_PAGES:
            return f"click[{PREV}]", "back to the item"
        if s.page == "item":
            if not self._wanted_item(goal, s.asin):
                return f"click[{PREV}]", "wrong item"
            for name, values in self.products[s.asin].options.items():
                want = self._wanted_option(goal, name, values)
                if want is not None and s.options.get(name) != want:
                    return f"click[{want}]", f"choose {want}"
            return f"click[{BUY}]", "buy it"
        return f"click[{BUY}]", "done"

    def _wanted_item(self, goal: Goal, asin: str) -> bool:
        """The expert's choice: the goal's own product, or (`first_match`) any product the goal's options buy at
        score 1.0, with the option clicks the expert would make, applied by the browser on a scratch page."""
        if asin == goal.asin or self.cfg.expert == "target":
            return asin == goal.asin
        key = (goal.goal_id, asin)
        if key not in self._matches:
            page = PageState(page="item", asin=asin)
            for name, values in self.products[asin].options.items():
                want = self._wanted_option(goal, name, values)
                if want is not None:
                    self.browser.step(page, f"click[{want}]")
            self._matches[key] = self.score(goal, asin, list(page.options.values())).total == 1.0
        return self._matches[key]

    @staticmethod
    def _wanted_option(goal: Goal, name: str, values: Sequence[str]) -> str | None:
        for n, v in goal.options:
            if n == name and v in values:
                return v
        for _, v in goal.options:
            g = normalize_color(v)
            for value in values:
                if fuzzy_score(normalize_color(value), g) > FUZZY_THRESHOLD:
                    return value
        return None

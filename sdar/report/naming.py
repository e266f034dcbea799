"""Names shared by the report and the workflow: method slugs, Table 1's environments and metric columns.

Imports nothing heavy (no torch): `workflows/rules/common.smk` imports `method_slug` / `method_from_slug`.

- A method slug is the method name with `*` replaced by `_star` (`skill_grpo*` -> `skill_grpo_star`); it is
  the directory name of a method's cells (`runs/<slug>/<env>/<model>/seed<seed>/`) and of its comparison
  (`compare/<slug>.md`).
- Metric names are those of `results/reference/paper_table1.csv`: ALFWorld `pick look clean heat cool pick2
  all`, Search-QA `nq triviaqa popqa hotpotqa 2wiki musique bamboogle avg`, WebShop `score success`; values
  in percent.
"""

from __future__ import annotations

import re

STAR = "_star"
_SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")

# Table 1's column blocks, in the paper's order.
ENVS: tuple[str, ...] = ("alfworld", "search_qa", "webshop")
ENV_LABELS: dict[str, str] = {"alfworld": "ALFWorld", "search_qa": "Search-QA", "webshop": "WebShop"}
METRICS: dict[str, tuple[str, ...]] = {
    "alfworld": ("pick", "look", "clean", "heat", "cool", "pick2", "all"),
    "search_qa": ("nq", "triviaqa", "popqa", "hotpotqa", "2wiki", "musique", "bamboogle", "avg"),
    "webshop": ("score", "success"),
}
METRIC_LABELS: dict[str, str] = {
    "pick": "Pick", "look": "Look", "clean": "Clean", "heat": "Heat", "cool": "Cool", "pick2": "Pick2",
    "all": "All", "nq": "NQ", "triviaqa": "TriviaQA", "popqa": "PopQA", "hotpotqa": "HotpotQA",
    "2wiki": "2Wiki", "musique": "MuSiQue", "bamboogle": "Bamboogle", "avg": "Avg", "score": "Score",
    "success": "Acc",
}  # fmt: skip
# The one number per environment that ranks methods (Kendall tau) and heads the comparison table.
HEADLINE: dict[str, str] = {"alfworld": "all", "search_qa": "avg", "webshop": "success"}

# Table 1's ten method rows, in the paper's order (extra rows such as gigpo follow them in the table).
TABLE1_METHODS: tuple[str, ...] = (
    "vanilla", "skill_prompt*", "opsd", "grpo", "skill_grpo", "skill_grpo*", "grpo_opsd", "skill_sd", "rlsd",
    "sdar",
)  # fmt: skip

# Per-step curves kept in steps.csv (metrics.jsonl names). Success rates are stored in percent; the gaps
# are token-mean log-prob differences (nats/token): `teacher_old_gap_mean` = log pi_T - log pi_old (the
# paper teaser's curve, every teacher row), `teacher_gap_mean` = log pi_T - log pi_theta (gated-term rows).
STEP_METRICS: tuple[str, ...] = (
    "eval/success_rate",
    "rollout/success_rate",
    "sdar/teacher_old_gap_mean",
    "sdar/teacher_gap_mean",
)
PERCENT_STEP_METRICS = frozenset({"eval/success_rate", "rollout/success_rate"})


def method_slug(name: str) -> str:
    """`skill_grpo*` -> `skill_grpo_star`; a name must be a safe path component with `*` only at its end."""
    if name.endswith(STAR) or "*" in name[:-1] or not _SLUG_RE.fullmatch(name.rstrip("*") or "-"):
        raise ValueError(f"method name {name!r} cannot be turned into a directory name")
    return name[:-1] + STAR if name.endswith("*") else name


def method_from_slug(slug: str) -> str:
    """Inverse of `method_slug`: `skill_grpo_star` -> `skill_grpo*`."""
    return slug[: -len(STAR)] + "*" if slug.endswith(STAR) else slug


def method_label(name: str) -> str:
    """The paper's label of a method row (`grpo_opsd` -> `GRPO+OPSD`); the name itself for an unknown row."""
    from sdar.methods import METHODS  # lazy: the methods table imports torch

    return METHODS[name].label if name in METHODS else name


def method_order(names) -> list[str]:
    """Table 1's rows first, in the paper's order, then any other method names alphabetically."""
    names = set(names)
    return [m for m in TABLE1_METHODS if m in names] + sorted(names - set(TABLE1_METHODS))


def metric_columns() -> list[tuple[str, str]]:
    """Table 1's 17 (env, metric) columns in the paper's order."""
    return [(env, metric) for env in ENVS for metric in METRICS[env]]

"""Evaluation on a fixed task panel with the paper's protocol (PAPER.md §4).

One episode per panel task, sampled at T = 0.4 for ALFWorld and WebShop, greedy for Search-QA (the
temperature comes from the environment's eval config). `*` methods see skills in the student's prompt.
Writes `eval.json`: success rate, per-column rates (ALFWorld task types, Search-QA sources; WebShop Score
and Acc), mean turns, valid-action ratio, the panel's content hash and the checkpoint evaluated.

An evaluation that reads only `n` tasks of a panel (`eval.episodes`, `train.eval_episodes`) reads the first `n`
of the panel dealt round robin over its categories (`eval_task_ids`), so every category is read alike: Search-QA's
panel lists its seven sources in blocks, and its first 64 of 70 questions used to hold only 4 of Bamboogle's 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from envs.base import EnvSuite, Task
from sdar.rollout import rollout, summarize


def eval_task_ids(suite: EnvSuite, n: int) -> list[str]:
    """The eval tasks an evaluation of `n` episodes reads (`n` = 0: the whole panel): the first `n` of the eval
    panel dealt round robin over its categories (`EnvSuite.dealt_task_ids`)."""
    return suite.dealt_task_ids("eval", n)


def evaluate_panel(
    policy, suite: EnvSuite, task_ids: Sequence[str], *, temperature: float, seed: int,
    student_prefix: Callable[[Task], str] | None = None, chunk: int = 64,
) -> dict:  # fmt: skip
    """Play one episode per task; return `summarize` metrics plus the 7-source average for Search-QA."""
    torch.manual_seed(seed)  # sampled evaluation is reproducible for a given seed
    results = []
    for i in range(0, len(task_ids), chunk):
        _, res = rollout(policy, suite, task_ids[i : i + chunk], group_size=1, temperature=temperature,
                         student_prefix=student_prefix, uid_prefix="eval/")  # fmt: skip
        results += res
    metrics = summarize(results, suite.columns)
    col_rates = [metrics[f"{c}_success_rate"] for c in suite.columns]
    # Search-QA's "Avg" is the unweighted mean of the 7 sources; ALFWorld's "All" is the overall rate.
    finite = [r for r in col_rates if not math.isnan(r)]
    metrics["column_mean"] = sum(finite) / len(finite) if finite else float("nan")
    return metrics

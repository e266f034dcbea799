"""Seed statistics for the tables and the comparison: small pure numpy/scipy functions.

Every function takes plain sequences of per-seed values (shape (n,), NaN already dropped by the caller or
dropped here) and returns floats; NaN means "not enough data", never an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sps


def _finite(values: Sequence[float]) -> np.ndarray:
    """(n,) float array of the finite entries of `values`."""
    a = np.asarray(values, dtype=float).reshape(-1)
    return a[np.isfinite(a)]


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample std with ddof=1, n) over seeds; std is 0.0 for one seed, both NaN for none."""
    a = _finite(values)
    if a.size == 0:
        return float("nan"), float("nan"), 0
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return float(a.mean()), std, int(a.size)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two paired score vectors (ties handled as tau-b); NaN for < 2 pairs or a
    constant vector."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(sps.kendalltau(x, y, variant="b").statistic)


def mean_ranks(values_by_group: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Average rank of each item over groups (e.g. a method's rank among methods, averaged over the
    paper's models). values_by_group: group -> item -> score; rank 1 = lowest score, ties get the average
    rank. Only items scored in every group are ranked."""
    groups = [g for g in values_by_group.values() if g]
    if not groups:
        return {}
    items = sorted(set.intersection(*(set(k for k, v in g.items() if np.isfinite(v)) for g in groups)))
    if not items:
        return {}
    ranks = np.stack([sps.rankdata([g[i] for i in items]) for g in groups])  # (groups, items)
    return dict(zip(items, ranks.mean(axis=0).tolist()))


def bootstrap_diff_ci(
    new: Sequence[float], base: Sequence[float], *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(new) - mean(base), low, high): percentile bootstrap CI of a difference of means.

    The two groups of seeds are resampled independently with replacement (`n_boot` times each) by a
    `numpy.random.Generator` seeded with `seed`, so the interval is reproducible. NaN triple when a group
    is empty; the difference with a NaN interval when a group has one seed (resampling one value has no
    spread: the "interval" would be the point itself).
    """
    a, b = _finite(new), _finite(base)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan"), float("nan")
    if a.size < 2 or b.size < 2:
        return float(a.mean() - b.mean()), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boot_a = rng.choice(a, size=(n_boot, a.size), replace=True).mean(axis=1)  # (n_boot,)
    boot_b = rng.choice(b, size=(n_boot, b.size), replace=True).mean(axis=1)  # (n_boot,)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot_a - boot_b, [alpha, 1.0 - alpha])
    return float(a.mean() - b.mean()), float(low), float(high)


def prob_improvement(new: Sequence[float], base: Sequence[float]) -> float:
    """P(X > Y) + 0.5 P(X = Y) for X a random new-method seed value and Y a random baseline seed value
    (all n_new x n_base pairs); NaN when a group is empty or both hold one seed (one pair: 0, 0.5 or 1 says
    which seed scored higher, not how likely an improvement is)."""
    a, b = _finite(new), _finite(base)
    if a.size == 0 or b.size == 0 or a.size * b.size < 2:
        return float("nan")
    diff = a[:, None] - b[None, :]  # (n_new, n_base)
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))

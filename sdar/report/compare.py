"""Compare a new method against the stored baselines, without retraining them (DESIGN.md §1.3).

For every (env, model, metric) the new method was run on and every baseline method stored for that
(env, model): mean ± std over seeds of both, the difference of means with a percentile bootstrap 95 % CI
(seeds resampled within each group), and the probability of improvement P(X_new > X_base) + 0.5 P(=) over
all pairs of seeds. Output `<out>/<slug>.csv` (every metric) and `<out>/<slug>.md` (headline metrics).

`snakemake_command` builds the workflow call that runs only the new method's cells and then this
comparison (`sdar-bench compare --method NEW` without `--results`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sdar.atomic import atomic_write_text
from sdar.configlib import ConfigError
from sdar.report import stats
from sdar.report.collect import frame_to_csv
from sdar.report.naming import (
    ENV_LABELS,
    ENVS,
    HEADLINE,
    METRIC_LABELS,
    METRICS,
    method_label,
    method_order,
    method_slug,
)
from sdar.report.tables import fmt_mean_std, fmt_value

COLUMNS = [
    "env", "model", "metric", "method", "baseline", "new_mean", "new_std", "new_seeds", "base_mean",
    "base_std", "base_seeds", "diff", "ci_low", "ci_high", "p_improvement",
]  # fmt: skip
N_BOOT = 10_000


def check_compatible(
    new: pd.DataFrame, base: pd.DataFrame, new_manifests: list[dict], base_manifests: list[dict]
) -> None:
    """Same profile, and per env the same evaluation panel (content hash) and the same tasks read from it
    (`tasks_sha256`), wherever both sides recorded them."""
    new_p, base_p = sorted(set(new.profile)), sorted(set(base.profile))
    if new_p != base_p:
        raise ConfigError(
            f"results of profile {new_p} cannot be compared with stored baselines of profile {base_p}"
        )
    for key, what in (("panel_sha256", "panel"), ("tasks_sha256", "set of panel tasks")):
        stored_by_env: dict[str, set[str]] = {}
        for m in base_manifests:
            if m.get(key):
                stored_by_env.setdefault(m["env"], set()).add(m[key])
        for m in new_manifests:
            stored = stored_by_env.get(m.get("env"), set())
            if m.get(key) and stored and m[key] not in stored:
                raise ConfigError(
                    f"{m.get('run_dir', m.get('method'))}: evaluated on a different {m['env']} {what} "
                    f"({m[key][:12]}) than the stored baselines ({', '.join(sorted(s[:12] for s in stored))})"
                )


def compare_rows(
    results: pd.DataFrame, baselines: pd.DataFrame, method: str, *, n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per (env, model, metric, baseline method); see COLUMNS. Fails clearly when nothing overlaps."""
    new = results[results.method == method]
    if new.empty:
        present = ", ".join(method_order(set(results.method))) or "none"
        raise ConfigError(f"no results for method {method!r} (methods in the results file: {present})")
    pairs = sorted(set(zip(new.env, new.model)))
    base = baselines[baselines.set_index(["env", "model"]).index.isin(pairs)]
    if base.empty:
        stored = sorted(set(zip(baselines.env, baselines.model)))
        raise ConfigError(
            f"no stored baseline cells for {method!r}'s (env, model) pairs {pairs}; stored: {stored}"
        )
    rows = []
    for env in [e for e in ENVS if e in set(new.env)]:
        for model in sorted(set(new[new.env == env].model)):
            for metric in METRICS[env]:
                x = _values(new, env, model, metric)
                g_base = base[(base.env == env) & (base.model == model) & (base.metric == metric)]
                if x.size == 0 or g_base.empty:
                    continue
                nm, ns, nn = stats.mean_std(x)
                for bm in method_order(set(g_base.method)):
                    y = _values(g_base[g_base.method == bm], env, model, metric)
                    bmean, bstd, bn = stats.mean_std(y)
                    diff, lo, hi = stats.bootstrap_diff_ci(x, y, n_boot=n_boot, seed=seed)
                    rows.append([env, model, metric, method, bm, nm, ns, nn, bmean, bstd, bn, diff, lo, hi,
                                 stats.prob_improvement(x, y)])  # fmt: skip
    if not rows:
        raise ConfigError(f"the stored baselines have none of {method!r}'s metrics for {pairs}")
    return pd.DataFrame(rows, columns=COLUMNS)


def _values(df: pd.DataFrame, env: str, model: str, metric: str) -> np.ndarray:
    """(n_seeds,) values of one (env, model, metric) cell group."""
    return df[(df.env == env) & (df.model == model) & (df.metric == metric)].value.to_numpy(dtype=float)


def to_markdown(df: pd.DataFrame, method: str, profile: str, *, n_boot: int = N_BOOT, seed: int = 0) -> str:
    """Headline metrics (ALFWorld All, Search-QA Avg, WebShop Score and Acc), one table per (env, metric, model)."""
    label = method_label(method)
    lines = [
        f"# {label} vs stored baselines (profile {profile})",
        "",
        f"Mean ± std over seeds (n), in percent. Δ = mean({label}) − mean(baseline); 95 % CI: percentile "
        f"bootstrap over seeds ({n_boot} resamples, seed {seed}). P(improvement) = probability that a random "
        f"{label} seed scores above a random baseline seed (ties count half). With one seed on a side there is "
        f"no interval (–), and with one on each no probability either: rerun with more seeds "
        f"(`seeds` in the Snakemake config) to get them. Every metric is in {method_slug(method)}.csv.",
        "",
    ]
    shown = {(e, HEADLINE[e]) for e in ENVS} | {("webshop", "score")}
    for (env, model, metric), g in df.groupby(["env", "model", "metric"], sort=False):
        if (env, metric) not in shown:
            continue
        first = g.iloc[0]
        lines += [
            f"## {ENV_LABELS[env]} {METRIC_LABELS[metric]}, {model}: {label} "
            f"{fmt_mean_std(first.new_mean, first.new_std)} (n={first.new_seeds})",
            "",
            "| Baseline | mean ± std (n) | Δ | 95 % CI | P(improvement) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for r in g.itertuples():
            ci = "–" if math.isnan(r.ci_low) else f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}]"
            lines.append(
                f"| {method_label(r.baseline)} | {fmt_mean_std(r.base_mean, r.base_std)} (n={r.base_seeds}) | "
                f"{fmt_value(r.diff, signed=True)} | {ci} | {fmt_value(r.p_improvement, 2)} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_compare(df: pd.DataFrame, method: str, profile: str, out: Path, **kw) -> list[Path]:
    """Write `<out>/<slug>.csv` and `<out>/<slug>.md` atomically."""
    slug = method_slug(method)
    paths = [Path(out) / f"{slug}.csv", Path(out) / f"{slug}.md"]
    atomic_write_text(paths[0], frame_to_csv(df))
    atomic_write_text(paths[1], to_markdown(df, method, profile, **kw))
    return paths


def compare_target(method: str, profile: str) -> str:
    """The workflow's comparison report of `method`, relative to the repository root."""
    return f"results/{profile}/compare/{method_slug(method)}.md"


def snakemake_command(
    method: str, profile: str, cores: str, repo: Path, *, dry_run: bool = False
) -> list[str]:
    """`snakemake --cores N results/<profile>/compare/<slug>.md --config compare_methods=[NEW]` (plus
    `--configfile config/<profile>.yaml` for a profile other than the default mini)."""
    # the target comes first: --configfile and --config take several values and would swallow it
    cmd = [sys.executable, "-m", "snakemake", compare_target(method, profile), "--cores", str(cores)]
    if profile != "mini":
        configfile = repo / "config" / f"{profile}.yaml"
        if not configfile.is_file():
            choices = [
                "mini",
                *sorted(
                    p.stem for p in (repo / "config").glob("*.yaml") if p.stem not in ("config", "schema")
                ),
            ]
            raise ConfigError(
                f"unknown profile {profile!r} (no config/{profile}.yaml); valid choices: {', '.join(choices)}"
            )
        cmd += ["--configfile", f"config/{profile}.yaml"]
    cmd += [
        "--config",
        f"compare_methods={json.dumps([method])}",
    ]
    if dry_run:
        cmd.append("--dry-run")
    return cmd

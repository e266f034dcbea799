"""Training curves from steps.csv: teacher-student gap and validation success against step.

Two figure kinds per (environment, model), each with two panels, written as PNG and PDF:
`gap_<env>_<model>` (y = token-mean teacher-student gap log pi_T - log pi_old, the paper teaser's curve;
`sdar/teacher_gap_mean` where a run lacks it) and `success_<env>_<model>` (y = validation success in
percent). Left panel: GRPO+OPSD vs SDAR; right panel: every method that has the metric. A line is the mean
over seeds at each step; the shaded band spans min..max over seeds (no band for one seed). A method without
the metric (GRPO has no teacher gap) is left out; an empty panel says "no data".
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from sdar.report.naming import ENV_LABELS, TABLE1_METHODS, method_label, method_order  # noqa: E402

GAP_METRICS = ("sdar/teacher_old_gap_mean", "sdar/teacher_gap_mean")
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "gap": (GAP_METRICS, "teacher−student gap (nats/token)"),
    "success": (("eval/success_rate",), "validation success (%)"),
}
PAIR = ("grpo_opsd", "sdar")  # the teaser's comparison


def seed_band(df: pd.DataFrame) -> pd.DataFrame:
    """Per step: mean, min and max over seeds. df: rows (seed, step, value) -> columns step, mean, lo, hi."""
    g = df.groupby("step")["value"]
    return pd.DataFrame({"mean": g.mean(), "lo": g.min(), "hi": g.max(), "n": g.count()}).reset_index()


def curve_data(steps: pd.DataFrame, metrics: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """method -> seed band of the first metric in `metrics` that the method logged (absent: no entry)."""
    out = {}
    for method in method_order(set(steps.method)):
        sel = steps[steps.method == method]
        for metric in metrics:
            m = sel[sel.metric == metric]
            if not m.empty:
                out[method] = seed_band(m)
                break
    return out


def _colors(methods: list[str]) -> dict[str, tuple]:
    """A fixed colour per method: Table 1's ten rows take tab10 in the paper's order, extra rows tab20's
    light shades."""
    base, extra = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    others = [m for m in methods if m not in TABLE1_METHODS]
    return {
        m: base(TABLE1_METHODS.index(m)) if m in TABLE1_METHODS else extra((2 * others.index(m) + 1) % 20)
        for m in methods
    }


def _panel(
    ax, curves: dict[str, pd.DataFrame], methods: list[str], colors: dict, title: str, ylabel: str
) -> None:
    shown = [m for m in methods if m in curves]
    for m in shown:
        c = curves[m]
        marker = "o" if len(c) < 3 else None  # a lone point would be invisible as a line
        ax.plot(c["step"], c["mean"], color=colors[m], label=method_label(m), lw=1.6, marker=marker, ms=3)
        if (c["n"] > 1).any():
            ax.fill_between(c["step"], c["lo"], c["hi"], color=colors[m], alpha=0.2, lw=0)
    if not shown:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
    else:
        ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def figure(steps: pd.DataFrame, kind: str, env: str, model: str):
    """The `kind` figure of one (env, model); steps is the whole steps.csv frame."""
    metrics, ylabel = KINDS[kind]
    sel = steps[(steps.env == env) & (steps.model == model)]
    curves = curve_data(sel, metrics)
    all_methods = method_order(set(steps.method) | set(PAIR))
    colors = _colors(all_methods)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    _panel(axes[0], curves, list(PAIR), colors, "GRPO+OPSD vs SDAR", ylabel)
    _panel(axes[1], curves, all_methods, colors, "all methods", "")
    seeds = sel.seed.nunique() if not sel.empty else 0
    fig.suptitle(
        f"{ENV_LABELS.get(env, env)}, {model}: mean over seeds ({seeds}), band = min–max", fontsize=10
    )
    fig.tight_layout()
    return fig


def figure_paths(out: Path, kind: str, env: str, model: str) -> list[Path]:
    stem = Path(out) / f"{kind}_{env}_{model}"
    return [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]


def _save(fig, path: Path) -> None:
    """Atomic save: render to a temp file next to the target, then rename."""
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    meta = {"CreationDate": None} if path.suffix == ".pdf" else {"Software": None}
    fig.savefig(tmp, dpi=150, metadata=meta)
    tmp.replace(path)


def write_plots(steps: pd.DataFrame, out: Path, envs=None, models=None) -> list[Path]:
    """Both kinds for every (env, model) of `envs` x `models` (default: the pairs present in steps)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if envs is None and models is None:
        pairs = sorted(set(zip(steps.env, steps.model)))
    else:
        pairs = [
            (e, m) for e in (envs or sorted(set(steps.env))) for m in (models or sorted(set(steps.model)))
        ]
    written = []
    for env, model in pairs:
        for kind in KINDS:
            fig = figure(steps, kind, env, model)
            try:
                for path in figure_paths(out, kind, env, model):
                    _save(fig, path)
                    written.append(path)
            finally:
                plt.close(fig)
    return written

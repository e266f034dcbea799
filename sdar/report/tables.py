"""Table 1 in the paper's layout, as CSV, Markdown and LaTeX.

Layout: one block per model; in each block one row per method (Table 1's ten rows in the paper's order,
then any extra rows that were run); 17 columns: ALFWorld Pick/Look/Clean/Heat/Cool/Pick2/All, Search-QA
NQ/TriviaQA/PopQA/HotpotQA/2Wiki/MuSiQue/Bamboogle/Avg, WebShop Score/Acc. A reproduced cell is
"mean ± std" over seeds with one decimal (sample std, ddof=1; 0.0 for one seed); a missing one is "–".

When the block's model is one of the paper's (`results/reference/paper_table1.csv`), each method row is
followed by the reported number ("paper") and the delta reproduced - reported ("Δ"). Every block ends with
a Kendall tau-b row: per environment, the rank agreement between the reproduced ordering of methods (mean
of the headline metric: ALFWorld All, Search-QA Avg, WebShop Acc) and the reported ordering: the same
model's when the paper has it, otherwise (tiny models of the mini / smoke profiles) the paper's
per-environment ordering averaged over its models (mean rank of each method over the paper's models).

table1.csv is the numeric version of the same table: columns `model, method, label, row` and one column
per metric named `<env>/<metric>`; `row` is `mean`, `std`, `seeds`, `reported`, `delta` for method rows
and `kendall_tau` (value in each environment's headline column) for the rank-agreement row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sdar.atomic import atomic_write_text
from sdar.configlib import ConfigError
from sdar.report import stats
from sdar.report.collect import read_csv
from sdar.report.naming import (
    ENV_LABELS,
    ENVS,
    HEADLINE,
    METRIC_LABELS,
    METRICS,
    TABLE1_METHODS,
    method_label,
    method_order,
    metric_columns,
)

DASH = "–"
REFERENCE_COLUMNS = ["model", "method", "env", "metric", "value"]
Key = tuple[str, str, str]  # (method, env, metric)


@dataclass
class Block:
    """One model's rows of Table 1."""

    model: str
    methods: list[str]
    cells: dict[Key, tuple[float, float, int]]
    """(method, env, metric) -> (mean, std, seeds) of the reproduced values (percent)."""
    reported: dict[Key, float] = field(default_factory=dict)
    """(method, env, metric) -> the paper's number for this very model; empty when the paper lacks it."""
    tau: dict[str, tuple[float, int]] = field(default_factory=dict)
    """env -> (Kendall tau-b, number of methods ranked)."""

    @property
    def matched(self) -> bool:
        return bool(self.reported)


@dataclass
class Table1:
    profile: str
    blocks: list[Block]
    reference_models: list[str]
    seeds: tuple[int, int]
    """(fewest, most) seeds in a reproduced cell."""


def read_reference(path: Path) -> pd.DataFrame:
    """paper_table1.csv: model,method,env,metric,value (percent)."""
    return read_csv(path, REFERENCE_COLUMNS, "reference file")


def _order_models(models, reference_models: list[str]) -> list[str]:
    models = set(models)
    return [m for m in reference_models if m in models] + sorted(models - set(reference_models))


def reported_ordering(reference: pd.DataFrame, env: str, model: str | None) -> dict[str, float]:
    """method -> score whose order is the reported ordering in `env`: the model's own headline values, or
    (model None / not in the paper) the mean rank over the paper's models."""
    ref = reference[(reference.env == env) & (reference.metric == HEADLINE[env])]
    if model is not None and model in set(ref.model):
        sel = ref[ref.model == model]
        return dict(zip(sel.method, sel.value.astype(float)))
    by_model = {m: dict(zip(g.method, g.value.astype(float))) for m, g in ref.groupby("model", sort=False)}
    return stats.mean_ranks(by_model)


def build_table1(results: pd.DataFrame, reference: pd.DataFrame) -> Table1:
    """Aggregate tidy results (profile,method,env,model,seed,metric,value) into Table 1's blocks."""
    if results.empty:
        raise ConfigError("results file has no rows: nothing to tabulate")
    profiles = sorted(set(results.profile))
    if len(profiles) != 1:
        raise ConfigError(f"results mix profiles {profiles}: tabulate one profile at a time")
    ref_models = list(dict.fromkeys(reference.model))
    ref_values = {(r.model, r.method, r.env, r.metric): float(r.value) for r in reference.itertuples()}
    blocks, seed_counts = [], []
    for model in _order_models(results.model, ref_models):
        sel = results[results.model == model]
        cells = {
            (method, env, metric): stats.mean_std(g.value.to_numpy(dtype=float))
            for (method, env, metric), g in sel.groupby(["method", "env", "metric"], sort=False)
        }
        seed_counts += [c[2] for c in cells.values()]
        methods = method_order(set(TABLE1_METHODS) | set(sel.method))
        reported = {}
        if model in ref_models:
            reported = {
                (m, e, k): ref_values[(model, m, e, k)]
                for m in methods
                for e, k in metric_columns()
                if (model, m, e, k) in ref_values
            }
        block = Block(model, methods, cells, reported)
        for env in ENVS:
            order = reported_ordering(reference, env, model)
            ranked = [m for m in methods if m in order and (m, env, HEADLINE[env]) in cells]
            x = [cells[(m, env, HEADLINE[env])][0] for m in ranked]
            block.tau[env] = (stats.kendall_tau(x, [order[m] for m in ranked]), len(ranked))
        blocks.append(block)
    return Table1(profiles[0], blocks, ref_models, (min(seed_counts), max(seed_counts)))


# ------------------------------------------------------------------------------------------------------
# formatting


def fmt_mean_std(mean: float, std: float, digits: int = 1, pm: str = " ± ") -> str:
    """`12.3 ± 1.0`; "–" for a missing (NaN) mean."""
    if mean is None or not math.isfinite(mean):
        return DASH
    return f"{mean:.{digits}f}{pm}{std:.{digits}f}"


def fmt_value(x: float | None, digits: int = 1, signed: bool = False) -> str:
    """`44.4` (or `+1.2` / `-3.4` when signed); "–" for None / NaN."""
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text (labels, model names, notes)."""
    out = []
    for ch in text:
        out.append(
            {
                "\\": r"\textbackslash{}",
                "&": r"\&",
                "%": r"\%",
                "$": r"\$",
                "#": r"\#",
                "_": r"\_",
                "{": r"\{",
                "}": r"\}",
                "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}",
                "–": "--",
                "±": r"$\pm$",
                "τ": r"$\tau$",
                "Δ": r"$\Delta$",
                "−": "-",
                "×": r"$\times$",
                "↳": "",
            }.get(ch, ch)  # fmt: skip
        )
    return "".join(out)


def _seeds_text(seeds: tuple[int, int]) -> str:
    lo, hi = seeds
    if lo == hi:
        return f"{lo} seed" if lo == 1 else f"{lo} seeds"
    return f"{lo}–{hi} seeds"


def table_note(table: Table1) -> str:
    """The table's note: what the numbers are and what tau is measured against."""
    parts = [
        f"Profile {table.profile}. Reproduced: mean ± std over seeds ({_seeds_text(table.seeds)} per cell; "
        "sample std, ddof=1), in percent. ALFWorld All = overall success; Search-QA Avg = unweighted mean of "
        "the 7 sources; WebShop Score = mean task score × 100, Acc = success rate. – = not run or no task "
        "of that column on the panel."
    ]
    if any(b.matched for b in table.blocks):
        parts.append(
            "paper = the number reported in the paper's Table 1 for the same model; Δ = reproduced mean − "
            "reported."
        )
    headline = ", ".join(f"{ENV_LABELS[e]} {METRIC_LABELS[HEADLINE[e]]}" for e in ENVS)
    tau = (
        f"Kendall τ = Kendall's tau-b between the reproduced ordering of methods and the reported one, per "
        f"environment, on the headline metric ({headline}), over the methods present in both"
    )
    unmatched = [b.model for b in table.blocks if not b.matched]
    if unmatched:
        tau += (
            f"; for models the paper does not report ({', '.join(unmatched)}) the reported ordering is the "
            f"paper's per-environment method ordering averaged over its models (mean rank over "
            f"{', '.join(table.reference_models)})"
        )
    if any(b.matched for b in table.blocks):
        tau += "; for the paper's own models it is that model's reported ordering"
    parts.append(tau + ".")
    return " ".join(parts)


def _method_rows(block: Block) -> list[tuple[str, str, list[str], list[float]]]:
    """(method, row kind, formatted cells, numbers) for the block's method rows and its tau row."""
    cols = metric_columns()
    rows = []
    for m in block.methods:
        cells = [block.cells.get((m, e, k), (math.nan, math.nan, 0)) for e, k in cols]
        rows.append((m, "mean", [fmt_mean_std(c[0], c[1]) for c in cells], [c[0] for c in cells]))
        rows.append((m, "std", [], [c[1] for c in cells]))
        rows.append((m, "seeds", [], [float(c[2]) for c in cells]))
        if block.matched:
            rep = [block.reported.get((m, e, k), math.nan) for e, k in cols]
            delta = [c[0] - r for c, r in zip(cells, rep)]
            rows.append((m, "reported", [fmt_value(r) for r in rep], rep))
            rows.append((m, "delta", [fmt_value(d, signed=True) for d in delta], delta))
    tau = [block.tau[e][0] if k == HEADLINE[e] else math.nan for e, k in cols]
    rows.append(
        (
            "",
            "kendall_tau",
            [fmt_value(t, 2) if k == HEADLINE[e] else "" for t, (e, k) in zip(tau, cols)],
            tau,
        )
    )
    return rows


# ------------------------------------------------------------------------------------------------------
# writers


def to_csv(table: Table1) -> str:
    """Numeric table1.csv (see the module docstring)."""
    cols = [f"{e}/{k}" for e, k in metric_columns()]
    records = []
    for block in table.blocks:
        for method, kind, _, numbers in _method_rows(block):
            label = method_label(method) if method else "Kendall tau"
            records.append([block.model, method, label, kind, *numbers])
    df = pd.DataFrame(records, columns=["model", "method", "label", "row", *cols])
    return df.to_csv(index=False, float_format="%.4g", lineterminator="\n")


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def to_markdown(table: Table1) -> str:
    """table1.md: a title, the note, then one Markdown table per model block."""
    header = ["Method", *(f"{ENV_LABELS[e]} {METRIC_LABELS[k]}" for e, k in metric_columns())]
    lines = [f"# Table 1 (profile {table.profile})", "", table_note(table), ""]
    for block in table.blocks:
        lines += [f"## {block.model}", "", _md_row(header), _md_row(["---", *["---:"] * (len(header) - 1)])]
        for method, kind, cells, _ in _method_rows(block):
            if kind == "mean":
                lines.append(_md_row([method_label(method), *cells]))
            elif kind == "reported":
                lines.append(_md_row(["↳ paper", *cells]))
            elif kind == "delta":
                lines.append(_md_row(["↳ Δ", *cells]))
            elif kind == "kendall_tau":
                n = ", ".join(f"{ENV_LABELS[e]} n={block.tau[e][1]}" for e in ENVS)
                lines.append(_md_row([f"Kendall τ vs paper ({n})", *cells]))
        lines.append("")
    return "\n".join(lines)


def to_latex(table: Table1) -> str:
    """table1.tex: a booktabs `table*` (needs \\usepackage{booktabs,graphicx})."""
    cols = metric_columns()
    ncol = len(cols) + 1
    spans, start = [], 2
    for env in ENVS:
        spans.append((env, start, start + len(METRICS[env]) - 1))
        start += len(METRICS[env])
    lines = [
        "% Table 1 reproduced by SDAR-Bench; requires \\usepackage{booktabs,graphicx}",
        "\\begin{table*}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(table_note(table))}}}",
        f"\\label{{tab:sdar-bench-table1-{latex_escape(table.profile)}}}",
        "\\resizebox{\\textwidth}{!}{%",
        f"\\begin{{tabular}}{{l*{{{len(cols)}}}{{c}}}}",
        "\\toprule",
        " & ".join(["", *(f"\\multicolumn{{{b - a + 1}}}{{c}}{{{ENV_LABELS[e]}}}" for e, a, b in spans)])
        + " \\\\",
        "".join(f"\\cmidrule(lr){{{a}-{b}}}" for _, a, b in spans),
        " & ".join(["Method", *(METRIC_LABELS[k] for _, k in cols)]) + " \\\\",
    ]
    for block in table.blocks:
        lines += [
            "\\midrule",
            f"\\multicolumn{{{ncol}}}{{l}}{{\\textit{{{latex_escape(block.model)}}}}} \\\\",
            "\\midrule",
        ]
        for method, kind, cells, _ in _method_rows(block):
            first = {"mean": latex_escape(method_label(method)), "reported": "\\quad paper",
                     "delta": "\\quad $\\Delta$", "kendall_tau": "Kendall $\\tau$"}.get(kind)  # fmt: skip
            if first is None:
                continue
            if kind == "kendall_tau":
                lines.append("\\midrule")
            lines.append(" & ".join([first, *(latex_escape(c) for c in cells)]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table*}", ""]
    return "\n".join(lines)


def write_table1(table: Table1, out: Path) -> list[Path]:
    """Write out/table1.{csv,md,tex} atomically; returns the paths."""
    out = Path(out)
    paths = [out / "table1.csv", out / "table1.md", out / "table1.tex"]
    for path, text in zip(paths, (to_csv(table), to_markdown(table), to_latex(table))):
        atomic_write_text(path, text)
    return paths

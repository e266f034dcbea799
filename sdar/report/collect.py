"""Collect cells into tidy tables: `eval.json` -> results.csv, `metrics.jsonl` -> steps.csv, `run.json` ->
manifests.jsonl.

- results.csv: `profile,method,env,model,seed,metric,value`, one row per Table 1 metric of a cell, in
  percent (success_rate x 100; WebShop Score = mean raw task score x 100, Acc = success rate x 100;
  ALFWorld `all` = overall success; Search-QA `avg` = unweighted mean of the seven source EMs). A column
  the panel has no task for (NaN in eval.json) has no row.
- steps.csv: `profile,method,env,model,seed,step,metric,value` for `naming.STEP_METRICS` (success rates in
  percent, teacher-student gaps in nats/token); eval-only cells have no steps.
- manifests.jsonl: one line per cell, `{"method","env","model","seed","profile","panel_sha256",
  "panel_size","tasks_sha256","run_dir","run": <run.json or null>}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from sdar.atomic import atomic_write_text
from sdar.configlib import ConfigError
from sdar.report.naming import METRICS, PERCENT_STEP_METRICS, STEP_METRICS, method_order

RESULT_COLUMNS = ["profile", "method", "env", "model", "seed", "metric", "value"]
STEP_COLUMNS = ["profile", "method", "env", "model", "seed", "step", "metric", "value"]
CELL_KEYS = ("method", "env", "model", "seed", "profile")
CELL = ["method", "env", "model", "seed"]  # a cell's identity within one profile


def cell_order(methods: Iterable[str]) -> Callable[[Sequence], tuple]:
    """Sort key of a (method, env, model, seed) cell: methods table order, then env, model and seed."""
    rank = {m: i for i, m in enumerate(method_order(set(methods)))}
    return lambda cell: (rank[cell[0]], cell[1], cell[2], int(cell[3]))


def _finite_or_none(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def table1_metrics(ev: dict) -> dict[str, float]:
    """Table 1 metrics (percent) of one eval.json dict; metrics that are NaN or absent are left out.

    ALFWorld: `<type>_success_rate` per task type, `all` = success_rate. Search-QA: `<source>_success_rate`
    per source, `avg` = unweighted mean of the sources that have tasks. WebShop: `score` = mean raw task
    score, `success` = success_rate (Acc).
    """
    env = ev.get("env")
    if env not in METRICS:
        raise ConfigError(f"eval.json has unknown env {env!r}; valid choices: {', '.join(METRICS)}")
    rates: dict[str, float | None] = {}
    if env == "webshop":
        rates = {
            "score": _finite_or_none(ev.get("score")),
            "success": _finite_or_none(ev.get("success_rate")),
        }
    else:
        cols = [m for m in METRICS[env] if m not in ("all", "avg")]
        rates = {c: _finite_or_none(ev.get(f"{c}_success_rate")) for c in cols}
        if env == "alfworld":
            rates["all"] = _finite_or_none(ev.get("success_rate"))
        else:
            present = [v for v in rates.values() if v is not None]
            rates["avg"] = sum(present) / len(present) if present else None
    return {m: 100.0 * rates[m] for m in METRICS[env] if rates.get(m) is not None}


def step_rows(lines: Iterable[dict]) -> list[tuple[int, str, float]]:
    """(step, metric, value) for the `STEP_METRICS` present and finite in metrics.jsonl records."""
    out = []
    for rec in lines:
        for metric in STEP_METRICS:
            v = _finite_or_none(rec.get(metric))
            if v is not None:
                out.append((int(rec["step"]), metric, 100.0 * v if metric in PERCENT_STEP_METRICS else v))
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err


def read_cell(run_dir: Path) -> dict:
    """One cell's eval.json, metrics.jsonl records (empty for eval-only rows) and run.json (None if absent)."""
    run_dir = Path(run_dir)
    ev_path = run_dir / "eval.json"
    if not ev_path.is_file():
        raise ConfigError(f"{run_dir}: no eval.json (run `sdar-bench evaluate` on this cell first)")
    ev = _read_json(ev_path)
    missing = [k for k in CELL_KEYS if k not in ev]
    if missing:
        raise ConfigError(f"{ev_path}: missing keys {missing}")
    metrics_path = run_dir / "metrics.jsonl"
    lines = (
        [json.loads(x) for x in metrics_path.read_text().splitlines() if x.strip()]
        if metrics_path.is_file()
        else []
    )
    run_path = run_dir / "run.json"
    return {"eval": ev, "metrics": lines, "run": _read_json(run_path) if run_path.is_file() else None}


def collect(
    run_dirs: Sequence[Path], profile: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Read cells -> (results, steps, manifests); fails on a cell of another profile or a duplicate cell."""
    if not run_dirs:
        raise ConfigError("collect: no run directories given")
    cells = []
    seen: dict[tuple, Path] = {}
    for d in run_dirs:
        cell = read_cell(Path(d))
        ev = cell["eval"]
        if profile is not None and ev["profile"] != profile:
            raise ConfigError(f"{d}: cell of profile {ev['profile']!r}, expected {profile!r}")
        key = tuple(ev[k] for k in CELL_KEYS)
        if key in seen:
            raise ConfigError(f"{d} and {seen[key]} are the same cell {key}")
        seen[key] = Path(d)
        cells.append((Path(d), cell))
    order = cell_order(c["eval"]["method"] for _, c in cells)
    cells.sort(key=lambda dc: order([dc[1]["eval"][k] for k in CELL]))

    results, steps, manifests = [], [], []
    for run_dir, cell in cells:
        ev = cell["eval"]
        ident = [ev["profile"], ev["method"], ev["env"], ev["model"], int(ev["seed"])]
        results += [[*ident, m, v] for m, v in table1_metrics(ev).items()]
        steps += [[*ident, s, m, v] for s, m, v in step_rows(cell["metrics"])]
        manifests.append({
            "method": ev["method"], "env": ev["env"], "model": ev["model"], "seed": int(ev["seed"]),
            "profile": ev["profile"], "panel_sha256": ev.get("panel_sha256"), "panel_size": ev.get("panel_size"),
            "tasks_sha256": ev.get("tasks_sha256"),
            "run_dir": str(run_dir), "run": cell["run"],
        })  # fmt: skip
    return (
        pd.DataFrame(results, columns=RESULT_COLUMNS),
        pd.DataFrame(steps, columns=STEP_COLUMNS),
        manifests,
    )


def frame_to_csv(df: pd.DataFrame) -> str:
    """CSV text with floats at 6 significant digits (stable across reruns)."""
    return df.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def write_collected(
    out: Path, results: pd.DataFrame, steps: pd.DataFrame, manifests: list[dict]
) -> list[Path]:
    """Write results.csv, steps.csv and manifests.jsonl under `out`, each atomically."""
    out = Path(out)
    paths = [out / "results.csv", out / "steps.csv", out / "manifests.jsonl"]
    atomic_write_text(paths[0], frame_to_csv(results))
    atomic_write_text(paths[1], frame_to_csv(steps))
    atomic_write_text(paths[2], "".join(json.dumps(m, sort_keys=True) + "\n" for m in manifests))
    return paths


def read_csv(path: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Read a tidy CSV, failing clearly if it is missing or lacks `columns`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} not found")
    df = pd.read_csv(path, dtype={"method": str, "env": str, "model": str, "metric": str})
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{what} {path}: missing columns {missing} (expected {', '.join(columns)})")
    return df


def read_results(path: Path) -> pd.DataFrame:
    """results.csv as written by `collect` (profile,method,env,model,seed,metric,value)."""
    return read_csv(path, RESULT_COLUMNS, "results file")


def read_steps(path: Path) -> pd.DataFrame:
    """steps.csv as written by `collect` (profile,method,env,model,seed,step,metric,value)."""
    return read_csv(path, STEP_COLUMNS, "steps file")


def read_manifests(path: Path) -> list[dict]:
    """manifests.jsonl lines; [] when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]

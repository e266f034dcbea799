"""Stored baselines: `results/baselines/<profile>/{results.csv,steps.csv,manifests.jsonl,README.md}`.

They are the committed results of a real full run, regenerated only on purpose: `store` refuses to replace
existing files without `overwrite=True` (and then leaves them untouched), and writes a complete new
directory next to the target before renaming it into place, so a reader never sees a half-written set.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from sdar.configlib import ConfigError
from sdar.report.collect import read_manifests, read_results, read_steps
from sdar.report.naming import ENVS, method_label, method_order

FILES = ("results.csv", "steps.csv", "manifests.jsonl")


def readme(profile: str, results: pd.DataFrame, manifests: list[dict]) -> str:
    """README.md of a stored set: what it holds, the cells, the code versions, how to regenerate it."""
    cells = results[["method", "env", "model", "seed"]].drop_duplicates()
    shas = sorted({(m.get("run") or {}).get("git", {}).get("describe", "unknown") for m in manifests}) or [
        "unknown"
    ]
    created = sorted(
        (m.get("run") or {}).get("created", "") for m in manifests if (m.get("run") or {}).get("created")
    )
    lines = [
        f"# Stored baselines: profile {profile}",
        "",
        "Committed results of a full run, used by `sdar-bench compare` so that a new method is compared",
        "without retraining these. Regenerate only on purpose:",
        "",
        "```",
        f"snakemake --cores all{'' if profile == 'mini' else f' --configfile config/{profile}.yaml'}",
        f"sdar-bench baselines store --profile {profile} --from results/{profile}/report --overwrite",
        "```",
        "",
        "- `results.csv`: profile,method,env,model,seed,metric,value (Table 1 metrics, percent)",
        "- `steps.csv`: profile,method,env,model,seed,step,metric,value (training curves)",
        "- `manifests.jsonl`: one line per cell: identity, eval panel and task-list hashes, run.json (code, packages, hardware)",
        "",
        f"Cells: {len(cells)}; code: {', '.join(shas)}"
        + (f"; runs created {created[0]} .. {created[-1]}" if created else "")
        + ".",
        "",
        "| method | env | model | seeds |",
        "| --- | --- | --- | --- |",
    ]
    for method in method_order(set(cells.method)):
        for env in [e for e in ENVS if e in set(cells.env)] + sorted(set(cells.env) - set(ENVS)):
            for model in sorted(set(cells.model)):
                seeds = sorted(
                    cells[(cells.method == method) & (cells.env == env) & (cells.model == model)].seed
                )
                if seeds:
                    lines.append(
                        f"| {method_label(method)} (`{method}`) | {env} | {model} | {', '.join(map(str, seeds))} |"
                    )
    return "\n".join(lines) + "\n"


def store(profile: str, src: Path, dest: Path, *, overwrite: bool = False) -> Path:
    """Copy a report directory's results.csv, steps.csv and manifests.jsonl to `dest` with a README.

    Fails (nothing changed) when a file is missing, when the results are of another profile, or when `dest`
    already holds stored baselines and `overwrite` is False.
    """
    src, dest = Path(src), Path(dest)
    for name in FILES:
        if not (src / name).is_file():
            raise ConfigError(
                f"{src / name} not found (run `sdar-bench collect` for profile {profile} first)"
            )
    results = read_results(src / "results.csv")
    read_steps(src / "steps.csv")  # validates the columns
    profiles = sorted(set(results.profile))
    if profiles != [profile]:
        raise ConfigError(f"{src / 'results.csv'} holds profile(s) {profiles}, not {profile!r}")
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise ConfigError(
            f"stored baselines already exist in {dest}; pass --overwrite to replace them on purpose"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.new-"))
    try:
        for name in FILES:
            shutil.copyfile(src / name, tmp / name)
        (tmp / "README.md").write_text(readme(profile, results, read_manifests(src / "manifests.jsonl")))
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
            old.rmdir()
            dest.rename(old)
            try:
                tmp.rename(dest)
            except BaseException:
                old.rename(dest)
                raise
            shutil.rmtree(old)
        else:
            tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


def load(path: Path) -> tuple[pd.DataFrame, list[dict]]:
    """(results, manifests) of a stored set; a clear error says how to create a missing one."""
    path = Path(path)
    if not (path / "results.csv").is_file():
        raise ConfigError(
            f"no stored baselines in {path} (create them from a full run with "
            f"`sdar-bench baselines store --profile P --from results/P/report`)"
        )
    return read_results(path / "results.csv"), read_manifests(path / "manifests.jsonl")

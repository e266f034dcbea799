"""Stored baselines: `results/baselines/<profile>/{results.csv,steps.csv,manifests.jsonl,README.md}`.

They are the committed results of real runs, regenerated only on purpose: `store` refuses to replace
existing files without `overwrite=True` (and then leaves them untouched), and writes a complete new
directory next to the target before renaming it into place, so a reader never sees a half-written set.
`add=True` adds a report's cells to an existing set instead (a grid too long for one sitting, stored as
its cells finish): a cell already stored is refused unless `overwrite`, and cells evaluated on another
panel or task list, or started from other weights (run.json's model revision), than the stored cells of their
environment are refused. The README names the CPU kernels each cell ran on (run.json `cpu_capability`), and
`kernel_notes` names an added cell run on other kernels than the stored cells of its environment: the same
weights can read a task or two differently there.

`warmstarts/<model>/<env>/` keeps, byte for byte, the warm start the cells of that environment started from
(their manifests' starting model directory, where it holds a `warmstart.json`): the SFT is exact on one machine
but another CPU trains other weights, so a later sitting reuses this one (`sdar-bench warmstart --stored`,
the workflow's `warmstart_from_baselines`) and its cells stay comparable with the stored ones.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from sdar.configlib import ConfigError
from sdar.report.collect import (
    CELL,
    cell_order,
    read_manifests,
    read_results,
    read_steps,
    write_collected,
)
from sdar.report.naming import ENVS, method_label, method_order

FILES = ("results.csv", "steps.csv", "manifests.jsonl")
WARMSTARTS = "warmstarts"  # <set>/warmstarts/<model>/<env>/: the warm start the cells started from
CONFIGS = Path(__file__).resolve().parents[2] / "config"  # the workflow's config files (config/<name>.yaml)


def readme(
    profile: str,
    results: pd.DataFrame,
    manifests: list[dict],
    name: str | None = None,
    warmstarts: Sequence[tuple[str, str]] = (),
) -> str:
    """README.md of a stored set: what it holds, the cells, the code versions, how to regenerate it.

    `name`: the set's directory name when it is not the profile's (a calibrated variant such as
    `mini_long`, run with `--configfile config/<name>.yaml`); `warmstarts`: the (model, env) pairs whose
    warm start the set keeps.
    """
    name = name or profile
    if not (CONFIGS / f"{name}.yaml").is_file():
        name = profile
    config = "" if name == "mini" else f" --configfile config/{name}.yaml"
    to = "" if name == profile else f" --to results/baselines/{name}"
    cells = results[["method", "env", "model", "seed"]].drop_duplicates()
    shas = sorted({(m.get("run") or {}).get("git", {}).get("describe", "unknown") for m in manifests}) or [
        "unknown"
    ]
    created = sorted(
        (m.get("run") or {}).get("created", "") for m in manifests if (m.get("run") or {}).get("created")
    )
    lines = [
        f"# Stored baselines: profile {profile}" + ("" if name == profile else f" ({name})"),
        "",
        "Committed results of real runs, used by `sdar-bench compare` so that a new method is compared",
        "without retraining these. Regenerate only on purpose (`--add` instead of `--overwrite` adds the",
        "cells of a report to the stored ones, for a grid run over several sittings):",
        "",
        "```",
        f"snakemake --cores all{config}",
        f"sdar-bench baselines store --profile {profile} --from results/{profile}/report{to} --overwrite",
        "```",
        "",
        "- `results.csv`: profile,method,env,model,seed,metric,value (Table 1 metrics, percent)",
        "- `steps.csv`: profile,method,env,model,seed,step,metric,value (training curves)",
        "- `manifests.jsonl`: one line per cell: identity, eval panel and task-list hashes, run.json (code, packages, hardware)",
        *(
            [
                "- `warmstarts/<model>/<env>/`: the warm start those cells started from, byte for byte; the workflow",
                "  reuses it (`warmstart_from_baselines`) so that cells added later start from the same weights",
                f"  ({', '.join(f'{mo}/{e}' for mo, e in warmstarts)})",
            ]
            if warmstarts
            else []
        ),
        "",
        f"Cells: {len(cells)}; code: {', '.join(shas)}"
        + (f"; runs created {created[0]} .. {created[-1]}" if created else "")
        + ".",
        "",
        "| method | env | model | seeds | CPU kernels |",
        "| --- | --- | --- | --- | --- |",
    ]
    kernels = {_cell(m): cpu_kernels(m) for m in manifests}
    for method in method_order(set(cells.method)):
        for env in [e for e in ENVS if e in set(cells.env)] + sorted(set(cells.env) - set(ENVS)):
            for model in sorted(set(cells.model)):
                seeds = sorted(
                    cells[(cells.method == method) & (cells.env == env) & (cells.model == model)].seed
                )
                if seeds:
                    by_kernels: dict[str, list[int]] = {}
                    for s in seeds:
                        by_kernels.setdefault(kernels.get((method, env, model, int(s)), "?"), []).append(s)
                    shown = (
                        next(iter(by_kernels))
                        if len(by_kernels) == 1
                        else "; ".join(
                            f"{k} ({', '.join(map(str, v))})" for k, v in sorted(by_kernels.items())
                        )
                    )
                    lines.append(
                        f"| {method_label(method)} (`{method}`) | {env} | {model} | {', '.join(map(str, seeds))} "
                        f"| {shown} |"
                    )
    if len(set(kernels.values())) > 1:
        lines += [
            "",
            "CPU kernels: the instruction set torch's CPU kernels used (run.json `cpu_capability`). The same",
            "weights can read a task or two differently on another one (float rounding), so compare cells of",
            "one environment read on the same kernels where the difference is that small (`?`: not recorded,",
            "a run from before run.json recorded it).",
        ]
    return "\n".join(lines) + "\n"


def _cell(m: dict) -> tuple[str, str, str, int]:
    return m["method"], m["env"], m["model"], int(m["seed"])


def cpu_kernels(m: dict) -> str:
    """The instruction set torch's CPU kernels used for a cell (its run.json `cpu_capability`, e.g. AVX2,
    AVX512), or "?" where the manifest does not record it."""
    return ((m.get("run") or {}).get("hardware") or {}).get("cpu_capability") or "?"


def kernel_notes(new: Sequence[dict], old: Sequence[dict]) -> list[str]:
    """One line per cell of `new` whose CPU kernels differ from those of the stored (`old`) cells of its
    environment and model: the same weights can read a task or two differently there (docs/mini_calibration.md,
    session 34), which a comparison of such cells should say. Cells without a record are not compared."""
    stored: dict[tuple[str, str], set[str]] = {}
    for m in old:
        if (k := cpu_kernels(m)) != "?":
            stored.setdefault((m["env"], m["model"]), set()).add(k)
    notes = []
    for m in new:
        k, there = cpu_kernels(m), stored.get((m["env"], m["model"]), set())
        if k != "?" and there and k not in there:
            notes.append(
                f"note: {m['method']}/{m['env']}/{m['model']}/seed {m['seed']} ran on {k} CPU kernels, the stored "
                f"{m['env']} cells on {', '.join(sorted(there))}: the same weights can read a task or two "
                "differently there (float rounding); say so where these cells are compared"
            )
    return notes


def _cell_keys(df: pd.DataFrame) -> set[tuple]:
    return {(m, e, mo, int(s)) for m, e, mo, s in df[CELL].drop_duplicates().itertuples(index=False)}


def _without(df: pd.DataFrame, cells: set[tuple]) -> pd.DataFrame:
    keep = [(m, e, mo, int(s)) not in cells for m, e, mo, s in df[CELL].itertuples(index=False)]
    return df[keep]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in `collect`'s cell order, each cell's rows as they were (a stable sort)."""
    order = cell_order(df.method)
    keys = [order(c) for c in df[CELL].itertuples(index=False)]
    return df.iloc[sorted(range(len(df)), key=keys.__getitem__)].reset_index(drop=True)


def starting_model(m: dict) -> tuple[str | None, str | None]:
    """(directory, revision) of the warm start a cell started from, as its run.json recorded them; (None, None)
    for a row that evaluates another row's trained checkpoint (`skill_grpo*`)."""
    from sdar.methods import METHODS

    row = METHODS.get(m["method"])
    if row is not None and not row.trains and row.checkpoint != "vanilla":
        return None, None
    model = (m.get("run") or {}).get("model") or {}
    return model.get("dir"), model.get("revision")


def check_starts(new: list[dict], old: Sequence[dict] = ()) -> None:
    """Refuses a new cell that started from other weights than the cells of its environment and model before
    it (the stored `old` first, then `new` in order)."""
    revisions: dict[tuple[str, str], str] = {}
    for m in old:
        if got := starting_model(m)[1]:
            revisions.setdefault((m["env"], m["model"]), got)
    for m in new:
        got = starting_model(m)[1]
        want = revisions.setdefault((m["env"], m["model"]), got) if got else None
        if got and got != want:
            raise ConfigError(
                f"{m['method']}/{m['env']}/{m['model']}/seed {m['seed']} started from the model {got}, the "
                f"other {m['env']} cells from {want}: not comparable (another warm start; reuse the stored one: "
                "`sdar-bench warmstart --stored`, or the workflow's warmstart_from_baselines)"
            )


def warmstart_dirs(manifests: list[dict]) -> dict[tuple[str, str], tuple[Path, str]]:
    """(model, env) -> (the warm start directory the cells started from, its recorded revision), where it is
    still on disk; refuses one that was rebuilt since (its revision now differs from the recorded one). Each
    directory is hashed once, however many cells started from it."""
    from sdar.models import model_revision

    out, now = {}, {}
    for m in manifests:
        directory, revision = starting_model(m)
        if not directory or not revision or not (Path(directory) / "warmstart.json").is_file():
            continue
        if directory not in now:
            now[directory] = model_revision(directory)
        if now[directory] != revision:
            raise ConfigError(
                f"{directory} is not the warm start {m['method']}/{m['env']}/{m['model']}/seed {m['seed']} "
                f"started from (revision {now[directory]}, recorded {revision}): rebuilt since; store its cells "
                "from the sitting that ran them"
            )
        out[(m["model"], m["env"])] = (Path(directory), revision)
    return out


def merge(
    old: tuple[pd.DataFrame, pd.DataFrame, list[dict]],
    new: tuple[pd.DataFrame, pd.DataFrame, list[dict]],
    *,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """(results, steps, manifests) of a stored set with `new`'s cells added.

    A cell in both is refused unless `overwrite` (then `new`'s replaces it). The eval panel and task-list
    hashes of `new`'s cells must equal those of the stored cells of the same environment and model, so every
    row of one environment was read on the same tasks.
    """
    (old_res, old_steps, old_man), (new_res, new_steps, new_man) = old, new
    both = _cell_keys(old_res) & _cell_keys(new_res)
    if both and not overwrite:
        shown = ", ".join("/".join(map(str, c)) for c in sorted(both))
        raise ConfigError(f"cells already stored: {shown}; pass --overwrite to replace them on purpose")
    hashes = {}
    for m in old_man:
        hashes.setdefault((m["env"], m["model"]), (m.get("panel_sha256"), m.get("tasks_sha256")))
    for m in new_man:
        want = hashes.get((m["env"], m["model"]))
        got = (m.get("panel_sha256"), m.get("tasks_sha256"))
        if want is not None and got != want:
            raise ConfigError(
                f"{m['method']}/{m['env']}/{m['model']}/seed {m['seed']} was evaluated on panel/tasks "
                f"{got[0]}/{got[1]}, the stored {m['env']} cells on {want[0]}/{want[1]}: not comparable"
            )
    check_starts(new_man, old_man)
    results = _sorted(pd.concat([_without(old_res, both), new_res], ignore_index=True))
    steps = _sorted(pd.concat([_without(old_steps, both), new_steps], ignore_index=True))
    cells = {_cell(m): m for m in [*old_man, *new_man]}
    manifests = [cells[k] for k in sorted(cells, key=cell_order(k[0] for k in cells))]
    return results, steps, manifests


def store(
    profile: str,
    src: Path,
    dest: Path,
    *,
    overwrite: bool = False,
    add: bool = False,
    note: Callable[[str], None] | None = None,
) -> Path:
    """Copy a report directory's results.csv, steps.csv and manifests.jsonl to `dest` with a README.

    Fails (nothing changed) when a file is missing, when the results are of another profile, or when `dest`
    already holds stored baselines and `overwrite` is False. With `add`, `src`'s cells join those stored in
    `dest` (see `merge`; an empty `dest` is created). `note` receives, once the set is written, a line per
    added cell run on other CPU kernels than the stored cells of its environment (`kernel_notes`).
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
    new_man = read_manifests(src / "manifests.jsonl")
    check_starts(new_man)
    starts = warmstart_dirs(new_man)
    stored = dest.exists() and any(dest.iterdir())
    if stored and not (overwrite or add):
        raise ConfigError(
            f"stored baselines already exist in {dest}; pass --overwrite to replace them on purpose "
            "(or --add to add cells to them)"
        )
    merged, notes = None, []
    if add and stored:
        old_res, old_man = load(dest)
        notes = kernel_notes(new_man, old_man)
        if sorted(set(old_res.profile)) != [profile]:
            raise ConfigError(f"{dest} holds profile(s) {sorted(set(old_res.profile))}, not {profile!r}")
        merged = merge(
            (old_res, read_steps(dest / "steps.csv"), old_man),
            (results, read_steps(src / "steps.csv"), new_man),
            overwrite=overwrite,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.new-"))
    try:
        if merged is None:
            for name in FILES:
                shutil.copyfile(src / name, tmp / name)
            manifests = read_manifests(src / "manifests.jsonl")
        else:
            results, _, manifests = merged
            write_collected(tmp, *merged)
        if merged is not None and (dest / WARMSTARTS).is_dir():
            shutil.copytree(dest / WARMSTARTS, tmp / WARMSTARTS)
        _copy_warmstarts(starts, tmp / WARMSTARTS)
        kept = sorted(
            (d.parent.name, d.name)
            for d in (tmp / WARMSTARTS).glob("*/*")
            if (d / "model.safetensors").is_file()
        )
        (tmp / "README.md").write_text(readme(profile, results, manifests, dest.name, kept))
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
    for line in notes if note else ():
        note(line)
    return dest


def _copy_warmstarts(starts: dict[tuple[str, str], tuple[Path, str]], root: Path) -> None:
    """Copy each (model, env)'s warm start to root/<model>/<env>/ unless the set keeps it already (then the
    kept copy must be the same weights: `check_starts` compared the cells' revisions)."""
    from sdar.models import model_revision

    for (model, env), (directory, revision) in sorted(starts.items()):
        target = root / model / env
        if target.exists():
            if model_revision(target) != revision:
                raise ConfigError(f"{target} keeps another warm start than {directory}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(directory, target)


def load(path: Path) -> tuple[pd.DataFrame, list[dict]]:
    """(results, manifests) of a stored set; a clear error says how to create a missing one."""
    path = Path(path)
    if not (path / "results.csv").is_file():
        raise ConfigError(
            f"no stored baselines in {path} (create them from a full run with "
            f"`sdar-bench baselines store --profile P --from results/P/report`)"
        )
    return read_results(path / "results.csv"), read_manifests(path / "manifests.jsonl")

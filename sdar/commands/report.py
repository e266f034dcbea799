"""`sdar-bench collect | tables | plots | compare | baselines`: the reporting verbs.

sdar-bench collect --profile P --out results/P/report RUN_DIR [RUN_DIR ...]
sdar-bench tables --results results/P/report/results.csv [--reference results/reference/paper_table1.csv] --out DIR
sdar-bench plots --steps results/P/report/steps.csv --out DIR [--envs E ...] [--models A ...]
sdar-bench compare --method NEW --results R.csv [--baselines results/baselines/P] [--out DIR]   # table only
sdar-bench compare --method NEW [--profile P] [--cores N]   # runs NEW's cells through snakemake, then the table
sdar-bench baselines store --profile P --from results/P/report [--to results/baselines/P] [--overwrite]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sdar.configlib import ConfigError

REPO = Path(__file__).resolve().parents[2]
BASELINES = REPO / "results" / "baselines"  # results/baselines/<profile>/: the stored baselines
REFERENCE = REPO / "results" / "reference" / "paper_table1.csv"


def register(sub) -> None:
    c = sub.add_parser(
        "collect",
        help="cells (eval.json, metrics.jsonl, run.json) -> results.csv, steps.csv, manifests.jsonl",
    )
    c.add_argument(
        "run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="cell directories holding eval.json"
    )
    c.add_argument("--profile", help="fail on a cell of another profile")
    c.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="report directory (e.g. results/mini/report)"
    )
    c.set_defaults(func=run_collect)

    t = sub.add_parser(
        "tables", help="Table 1 (CSV, Markdown, LaTeX) from results.csv and the paper's numbers"
    )
    t.add_argument("--results", type=Path, required=True, help="results.csv written by `sdar-bench collect`")
    t.add_argument(
        "--reference", type=Path, default=REFERENCE, help="the paper's Table 1 (default: %(default)s)"
    )
    t.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes DIR/table1.{csv,md,tex}")
    t.set_defaults(func=run_tables)

    p = sub.add_parser("plots", help="teacher-student gap and validation success against step, PNG and PDF")
    p.add_argument("--steps", type=Path, required=True, help="steps.csv written by `sdar-bench collect`")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="writes DIR/{gap,success}_<env>_<model>.{png,pdf}")  # fmt: skip
    p.add_argument("--envs", nargs="+", help="figures for exactly these envs (default: those in steps.csv)")
    p.add_argument(
        "--models", nargs="+", help="figures for exactly these models (default: those in steps.csv)"
    )
    p.set_defaults(func=run_plots)

    m = sub.add_parser(
        "compare", help="a new method against the stored baselines (mean ± std, bootstrap CI, P(improvement))"
    )
    m.add_argument("--method", required=True, help="the new method's row name (sdar-bench methods list)")
    m.add_argument("--results", type=Path,
                   help="results.csv holding the new method's cells; without it, snakemake runs them first")  # fmt: skip
    m.add_argument(
        "--baselines", type=Path, help="stored baselines directory (default: results/baselines/<profile>)"
    )
    m.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="writes DIR/<slug>.{csv,md} (default: results/<profile>/compare)",
    )
    m.add_argument("--profile", help="profile (default: the results' profile, or mini)")
    m.add_argument("--cores", default="all", help="snakemake --cores (default: all)")
    m.add_argument("--dry-run", action="store_true", help="snakemake --dry-run: show the jobs, run nothing")
    m.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default: %(default)s)")
    m.add_argument("--seed", type=int, default=0, help="bootstrap generator seed (default: %(default)s)")
    m.set_defaults(func=run_compare)

    b = sub.add_parser("baselines", help="stored baselines: results of a full run, committed")
    verbs = b.add_subparsers(dest="baselines_command", required=True, metavar="VERB")
    s = verbs.add_parser("store", help="store a report directory as the profile's baselines")
    s.add_argument("--profile", required=True)
    s.add_argument(
        "--from",
        dest="src",
        type=Path,
        required=True,
        metavar="DIR",
        help="report directory (results/P/report)",
    )
    s.add_argument("--to", dest="dest", type=Path, metavar="DIR", help="default: results/baselines/<profile>")
    s.add_argument(
        "--overwrite", action="store_true", help="replace existing stored baselines (on purpose only)"
    )
    s.add_argument(
        "--add",
        action="store_true",
        help="add the report's cells to the stored ones (a grid stored over several sittings); "
        "with --overwrite, its cells replace stored cells of the same identity",
    )
    s.set_defaults(func=run_store)


def run_collect(args) -> int:
    from sdar.report.collect import collect, write_collected

    results, steps, manifests = collect(args.run_dirs, args.profile)
    for path in write_collected(args.out, results, steps, manifests):
        print(path)
    return 0


def run_tables(args) -> int:
    from sdar.report.collect import read_results
    from sdar.report.tables import build_table1, read_reference, write_table1

    table = build_table1(read_results(args.results), read_reference(args.reference))
    for path in write_table1(table, args.out):
        print(path)
    return 0


def run_plots(args) -> int:
    from sdar.report.collect import read_steps
    from sdar.report.plots import write_plots

    for path in write_plots(read_steps(args.steps), args.out, envs=args.envs, models=args.models):
        print(path)
    return 0


def run_compare(args) -> int:
    from sdar.methods import get_method

    get_method(args.method)  # an unknown name fails here with the list of choices
    if args.results is None:
        return _compare_through_workflow(args)

    from sdar.report import baselines
    from sdar.report.collect import read_manifests, read_results
    from sdar.report.compare import check_compatible, compare_rows, write_compare

    results = read_results(args.results)
    profiles = sorted(set(results.profile))
    profile = args.profile or (profiles[0] if len(profiles) == 1 else None)
    if profile is None or profiles != [profile]:
        raise ConfigError(
            f"{args.results} holds profile(s) {profiles}; expected one profile ({args.profile or 'any'})"
        )
    base_dir = args.baselines or BASELINES / profile
    base, base_manifests = baselines.load(base_dir)
    check_compatible(results, base, read_manifests(args.results.parent / "manifests.jsonl"), base_manifests)
    df = compare_rows(results, base, args.method, n_boot=args.n_boot, seed=args.seed)
    out = args.out or Path("results") / profile / "compare"
    for path in write_compare(df, args.method, profile, out, n_boot=args.n_boot, seed=args.seed):
        print(path)
    return 0


def _compare_through_workflow(args) -> int:
    from sdar.report.compare import compare_target, snakemake_command

    if args.baselines is not None or args.out is not None:
        raise ConfigError(
            "--baselines and --out go with --results; the workflow writes results/<profile>/compare/"
        )
    profile = args.profile or "mini"
    cmd = snakemake_command(args.method, profile, args.cores, REPO, dry_run=args.dry_run)
    if not args.dry_run:  # no stored baselines: say so before the new method's cells train for hours
        from sdar.report import baselines

        baselines.load(BASELINES / profile)
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.run(cmd, cwd=REPO).returncode
    if rc != 0:
        print(f"sdar-bench: error: snakemake failed (exit {rc})", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(REPO / compare_target(args.method, profile))
    return 0


def run_store(args) -> int:
    from sdar.report.baselines import store

    dest = store(
        args.profile,
        args.src,
        args.dest or REPO / "results" / "baselines" / args.profile,
        overwrite=args.overwrite,
        add=args.add,
        note=lambda line: print(line, file=sys.stderr),
    )
    print(dest)
    return 0

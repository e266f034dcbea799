"""`sdar-bench train` and `sdar-bench evaluate`: one cell of the grid.

    sdar-bench train --method sdar --env alfworld --model tiny-qwen3 --seed 0 --out DIR --model-dir VANILLA [--profile mini]
    sdar-bench evaluate --run DIR                       # a trained cell: its last checkpoint
    sdar-bench evaluate --method vanilla --env E --model A --seed S --model-dir VANILLA --out DIR   # evaluation-only rows

The profile's overrides (`config/profiles/<profile>.yaml`) come first, then `--config` files, then the flags,
then `--set` items. `config.resolved.yaml` and `run.json` are written before any work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sdar import config as config_mod
from sdar import configlib
from sdar.configlib import ConfigError
from sdar.preflight import check_data_paths

REPO = Path(__file__).resolve().parents[2]


def profile_file(profile: str) -> Path:
    path = REPO / "config" / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in (REPO / "config" / "profiles").glob("*.yaml"))
        raise ConfigError(f"unknown profile {profile!r}; valid choices: {', '.join(choices)}")
    return path


def _cell_args(p, *, required: bool) -> None:
    p.add_argument("--method", required=required, help="method row (sdar-bench methods list)")
    p.add_argument("--env", required=required, help="alfworld, webshop or search_qa")
    p.add_argument("--model", required=required, help="model alias (sdar-bench models list)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--profile", default="mini", help="config/profiles/<profile>.yaml overrides (default mini)"
    )
    p.add_argument(
        "--model-dir", type=Path, help="starting checkpoint: the warm-started `vanilla` model directory"
    )
    config_mod.add_config_args(p)


def register(sub) -> None:
    t = sub.add_parser("train", help="train one cell (method × env × model × seed)")
    _cell_args(t, required=True)
    t.add_argument(
        "--out", type=Path, required=True, help="run directory (resumes from its checkpoint if present)"
    )
    t.set_defaults(func=run_train)

    e = sub.add_parser(
        "evaluate", help="evaluate a trained run, or an evaluation-only method on a model directory"
    )
    e.add_argument("--run", type=Path, help="a trained run directory (uses its config and last checkpoint)")
    _cell_args(e, required=False)
    e.add_argument("--out", type=Path, help="where eval.json goes (default: the run directory)")
    e.set_defaults(func=run_evaluate)


def cell_config(args) -> config_mod.Config:
    flags = {"run": {k: v for k, v in {"method": args.method, "env": args.env, "model": args.model,
                                         "seed": args.seed, "profile": args.profile}.items() if v is not None}}  # fmt: skip
    cfg = configlib.load(config_mod.Config, [profile_file(args.profile), *args.config], args.set, extra=flags)
    check_data_paths(cfg)  # missing data: a clear error before the run directory is written
    return cfg


def _model_dir(args) -> Path:
    if args.model_dir is None:
        raise ConfigError("--model-dir is required: the warm-started model directory this cell starts from")
    if not (args.model_dir / "config.json").is_file():
        raise ConfigError(
            f"--model-dir {args.model_dir}: no config.json (build it with `sdar-bench models build` or the warm start)"
        )
    return args.model_dir


def run_train(args) -> int:
    from sdar.methods import get_method
    from sdar.trainer import checkpoint_step, latest_checkpoint, train

    cfg = cell_config(args)
    row = get_method(cfg.run.method)
    if not row.trains:
        raise ConfigError(f"method {cfg.run.method!r} is evaluation-only (it evaluates the {row.checkpoint!r} "
                          f"checkpoint): use `sdar-bench evaluate`")  # fmt: skip
    model_dir = _model_dir(args)
    ckpt = latest_checkpoint(args.out)
    # a finished run called again trains nothing, so its run files stay as they are (no empty leg in run.json)
    if ckpt is None or checkpoint_step(ckpt) < cfg.train.steps:
        config_mod.write_run_files(cfg, args.out, model_dir=model_dir, resuming=ckpt is not None)
        (args.out / "init_model.txt").write_text(str(model_dir.resolve()) + "\n")
    train(cfg, args.out, model_dir=model_dir, log=lambda s: print(s, file=sys.stderr, flush=True))
    return 0


def run_evaluate(args) -> int:
    from sdar.evaluation_cell import evaluate_cell

    if args.run is not None:
        cfg = configlib.load(config_mod.Config, [args.run / "config.resolved.yaml", *args.config], args.set)
        check_data_paths(cfg)
        model_dir = args.run / "checkpoint" / "model"
        if not (model_dir / "config.json").is_file():
            raise ConfigError(f"--run {args.run}: no finished checkpoint (train it first)")
        out = args.out or args.run
    else:
        cfg = cell_config(args)
        model_dir = _model_dir(args)
        if args.out is None:
            raise ConfigError("--out is required with --model-dir")
        out = args.out
        config_mod.write_run_files(cfg, out, model_dir=model_dir)
    result = evaluate_cell(cfg, model_dir, out)
    print(json.dumps({k: result[k] for k in ("method", "env", "model", "seed", "success_rate", "score")}))
    return 0

"""`sdar-bench warmstart`: the supervised warm start that makes the shared `vanilla` checkpoint (issue #5).

    sdar-bench warmstart --model tiny-qwen3 --model-dir BASE --out VANILLA [--profile mini] [--config F] [--set k=v]

`BASE` is the freshly built model (`sdar-bench models build`); `VANILLA` receives a standard Hugging Face
directory (model + tokenizer, saved atomically), `config.resolved.yaml` and `run.json` (written before any
work) and `warmstart.json` (examples and tokens per environment, loss curve, wall time). Settings live under
`warmstart:` (sdar/warmstart.py `WarmstartConfig`); the profile's file comes first, then `--config`, then `--set`.

`--stored DIR`: where DIR holds a stored warm start (`results/baselines/<set>/warmstarts/<model>/<env>`, written
by `sdar-bench baselines store`), it is copied into `VANILLA` byte for byte instead of training one, after a check
that it was made with the same settings (sdar/warmstart.py `restore_stored`): cells added to a stored set must
start from its weights. Where DIR holds none, the warm start is trained as usual.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sdar import config as config_mod
from sdar import configlib
from sdar.commands.train import _model_dir, profile_file
from sdar.configlib import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "warmstart", help="SFT on noisy expert demonstrations of every env -> the vanilla model"
    )
    p.add_argument("--model", required=True, help="model alias of BASE (sdar-bench models list)")
    p.add_argument("--model-dir", type=Path, required=True, help="the built, untrained model directory")
    p.add_argument("--out", type=Path, required=True, help="where the warm-started model directory goes")
    p.add_argument(
        "--profile", default="mini", help="config/profiles/<profile>.yaml overrides (default mini)"
    )
    p.add_argument(
        "--stored",
        type=Path,
        metavar="DIR",
        help="reuse the stored warm start in DIR (results/baselines/<set>/warmstarts/<model>/<env>) if it holds "
        "one, instead of training",
    )
    config_mod.add_config_args(p)
    p.set_defaults(func=run_warmstart)


def run_warmstart(args) -> int:
    from sdar.atomic import atomic_write_json
    from sdar.warmstart import warmstart

    flags = {"run": {"model": args.model, "profile": args.profile}}
    cfg = configlib.load(config_mod.Config, [profile_file(args.profile), *args.config], args.set, extra=flags)
    base = _model_dir(args)
    if args.out.resolve() == base.resolve():
        raise ConfigError(
            "--out must differ from --model-dir (the base model is read while the result is written)"
        )
    if args.stored is not None and (args.stored / "model.safetensors").is_file():
        from sdar.warmstart import restore_stored

        done = restore_stored(cfg, args.stored, args.out, log=lambda s: print(s, file=sys.stderr, flush=True))
        print(json.dumps(done))
        return 0
    if args.stored is not None:
        print(f"no stored warm start in {args.stored}: training one", file=sys.stderr, flush=True)
    config_mod.write_run_files(cfg, args.out, model_dir=base)
    summary = warmstart(cfg, base, args.out, log=lambda s: print(s, file=sys.stderr, flush=True))
    summary = {"model": args.model, "base_model_dir": str(base.resolve()), **summary}
    atomic_write_json(args.out / "warmstart.json", summary)
    print(
        json.dumps({k: summary[k] for k in ("examples", "tokens", "loss_start", "loss_end", "wall_seconds")})
    )
    return 0

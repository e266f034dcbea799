"""The warm start's SFT step (TRL's `SFTTrainer`) under TRL's defaults and under the suite's two switches.

TRL's `SFTConfig` checkpoints activations by default (`gradient_checkpointing=True`: every forward is run
again in the backward) and computes the loss through its chunked LM head (per-token log-probs, entropy and
token accuracy in chunks, without materialising the logits). Both save GPU memory on large models; on the
tiny models on CPU they only cost time. Three variants train the same tiny-qwen3 on the same mini-profile
demonstrations from the same seed, alternating, `--repeats` times:

- `trl_defaults`: `warmstart.gradient_checkpointing=true`, `warmstart.fused_lm_head=true`;
- `no_checkpointing`: `gradient_checkpointing=false`, `fused_lm_head=true`;
- `suite` (the default): `gradient_checkpointing=false`, `fused_lm_head=false` (the model's own loss).

Run: `python benchmarks/sft_step.py [--env search_qa] [--steps 40] [--repeats 2] [--threads 1]`
Prints one JSON object: median seconds per SFT step per variant, the ratios to `trl_defaults`, and each
variant's loss curve (equal to rounding: the switches change the speed, not the numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from _cli import build_tiny_qwen3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VARIANTS = {
    "trl_defaults": {"gradient_checkpointing": True, "fused_lm_head": True},
    "no_checkpointing": {"gradient_checkpointing": False, "fused_lm_head": True},
    "suite": {"gradient_checkpointing": False, "fused_lm_head": False},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="search_qa")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--demos", type=int, default=300, help="demonstration episodes (the mini profile has 1,000)"
    )
    args = ap.parse_args()

    import torch

    from envs.registry import make_suite
    from sdar import configlib
    from sdar.config import Config
    from sdar.models import load_tokenizer
    from sdar.warmstart import build_dataset, train_sft

    torch.set_num_threads(args.threads)
    profiles = REPO / "config" / "profiles"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "envs"
        model = build_tiny_qwen3(tmp, cache, 100, "--profile", "mini")
        cfg = configlib.load(Config, [profiles / "mini.yaml", profiles / f"mini_{args.env}.yaml"],
                             [f"paths.env_cache={cache}", f"warmstart.envs=[{args.env}]",
                              f"warmstart.episodes={args.demos}", f"warmstart.max_steps={args.steps}",
                              "warmstart.logging_steps=10"])  # fmt: skip
        suites = {args.env: make_suite(args.env, getattr(cfg.envs, args.env), cache_dir=cache)}
        dataset, _ = build_dataset(
            cfg.warmstart, suites, load_tokenizer(model), cfg.skills, log=lambda _: None
        )
        seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
        curves: dict[str, list[float]] = {}
        for r in range(args.repeats):
            for name, switches in VARIANTS.items():
                torch.manual_seed(cfg.warmstart.seed)
                with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its log lines
                    res = train_sft(replace(cfg.warmstart, **switches), dataset, model, tmp / f"{name}-{r}",
                                    log=lambda _: None)  # fmt: skip
                seconds[name].append(res["train_seconds"] / res["steps"])
                curves[name] = [round(loss, 4) for _, loss in res["loss_curve"]]
        med = {k: statistics.median(v) for k, v in seconds.items()}
        print(json.dumps({
            "env": args.env, "steps": args.steps, "repeats": args.repeats, "threads": args.threads,
            "examples": len(dataset), "s_per_step": {k: round(v, 3) for k, v in med.items()},
            "speedup_vs_trl_defaults": {k: round(med["trl_defaults"] / v, 2) for k, v in med.items()},
            "loss_curves": curves,
        }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

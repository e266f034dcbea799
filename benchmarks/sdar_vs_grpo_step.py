"""SDAR step time vs GRPO step time on the same rollouts (target ratio <= 1.25; DESIGN.md §10).

Both cells start from the same model with the same seed, so step 0's rollout is identical (same sampled
tokens); the difference is SDAR's extra no-grad teacher forward on the skill-augmented prompts and its
auxiliary term. The script trains one step of each method (alternating, `--repeats` times) and reads the
wall-clock split from each run's `timings.jsonl`.

Run: `python benchmarks/sdar_vs_grpo_step.py --env webshop [--repeats 3] [--profile smoke]`
Prints one JSON object (median seconds per phase and the ratios).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _cli import build_tiny_qwen3, run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="webshop")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=4, help="tasks per step (G = 4 episodes each)")
    ap.add_argument("--max-turns", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "envs"
        model = build_tiny_qwen3(tmp, cache, 30)
        variants = {"grpo": ("grpo", []), "sdar": ("sdar", []),
                    "sdar_unshared": ("sdar", ["--set", "train.teacher_share_prefix=false"])}  # fmt: skip
        phases: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(args.repeats):
            for variant, (method, extra) in variants.items():
                out = tmp / f"{variant}{r}"
                run(["train", "--method", method, "--env", args.env, "--model", "tiny-qwen3", "--seed", "0",
                     "--out", str(out), "--model-dir", str(model), "--profile", args.profile,
                     "--set", f"paths.env_cache={cache}", "--set", "train.steps=1", "--set", "train.eval_every=0",
                     "--set", f"train.tasks_per_step={args.tasks}", "--set", "train.group_size=4",
                     "--set", "train.max_new_tokens=48", "--set", "train.max_prompt_tokens=2048", "--set", f"envs.{args.env}.max_turns={args.max_turns}",
                     "--set", "train.minibatch_size=64", "--set", "train.micro_batch_size=32", *extra])  # fmt: skip
                phases[variant].append(json.loads((out / "timings.jsonl").read_text().splitlines()[0]))
        med = {m: {k: statistics.median(p[k] for p in ps) for k in ("rollout_s", "score_s", "update_s", "step_s")}
               for m, ps in phases.items()}  # fmt: skip
        g, s, u = med["grpo"], med["sdar"], med["sdar_unshared"]
        print(json.dumps({
            "env": args.env, "repeats": args.repeats, "grpo": g, "sdar": s, "sdar_unshared_teacher": u,
            "step_ratio": round(s["step_s"] / g["step_s"], 3),
            "train_phase_ratio": round((s["score_s"] + s["update_s"]) / (g["score_s"] + g["update_s"]), 3),
            "step_ratio_unshared_teacher": round(u["step_s"] / g["step_s"], 3),
        }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

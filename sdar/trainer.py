"""The one training loop that serves every method (DESIGN.md §4, §8; PAPER.md §7).

Read top to bottom: setup → for each RL step: rollout (G episodes per task) → no-grad scoring (old,
reference, teacher log-probs) → advantages → one PPO epoch of mini-batch updates with the method's loss
(a row of `sdar.methods.METHODS`, never a branch here) → metrics, periodic evaluation, checkpoint.

Run: `sdar-bench train --method sdar --env alfworld --model tiny-qwen3 --seed 0 --out DIR`.

Departures from the official scripts are config switches in `TrainConfig` (per-profile values in
config/profiles/*.yaml), listed in docs/protocol_parity.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from baselines.batch import LossBatch


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and rollout settings of one training cell (PAPER.md §4 defaults)."""

    steps: int = 150
    """RL steps (one rollout batch each)."""
    tasks_per_step: int = 16
    """Distinct tasks per RL step (`train_batch_size`)."""
    group_size: int = 8
    """Episodes per task sharing its initial state (G, `env.rollout.n`)."""
    lr: float = 1e-6
    """AdamW learning rate (constant after warmup)."""
    warmup_ratio: float = 0.0
    """Linear warmup as a fraction of `steps` (0.1 in the Search-QA scripts)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clip per optimizer step."""
    minibatch_size: int = 256
    """Turn samples per optimizer step (PPO mini-batch; 64 for WebShop)."""
    micro_batch_size: int = 32
    """Samples per forward/backward; gradients accumulate over a mini-batch (loss / accumulation steps)."""
    ppo_epochs: int = 1
    """Passes over each rollout batch."""
    rollout_temperature: float = 1.0
    """Sampling temperature of training rollouts."""
    top_p: float = 1.0
    """Nucleus sampling threshold of rollouts."""
    max_prompt_tokens: int = 2048
    """Prompt limit; longer prompts are left-truncated (teacher prompts too)."""
    max_new_tokens: int = 512
    """Response limit per turn."""
    logprob_batch_size: int = 64
    """Samples per no-grad scoring forward (old, reference, teacher)."""
    generation_batch_size: int = 128
    """Prompts per generate call."""
    eval_every: int = 5
    """Evaluate on the eval panel every this many steps (and before training); 0 = only at the end."""
    eval_episodes: int = 128
    """Episodes per periodic evaluation (the eval panel's first, dealt round robin over its categories:
    `sdar.evaluate.eval_task_ids`; 0 = the whole panel)."""
    checkpoint_every: int = 5
    """Save a resumable checkpoint every this many steps (always at the end)."""
    fresh_tasks: bool = False
    """RL draws only train tasks the warm start did not demonstrate (`warmstart.episodes`, `episodes_per_env` and
    `task_order` say which: `sdar.warmstart.demonstrated_task_ids`), as the paper's instruct models never saw its RL
    questions. False = every train task (official: no warm start, so no choice to make)."""
    skip_zero_advantage_groups: bool = False
    """Drop groups whose advantages are all zero before the update (faster; changes the KL/aux terms' sample set). Official: False."""
    backend: Literal["hf", "vllm"] = "hf"
    """Generation backend: transformers (CPU/GPU) or vLLM (GPU extra)."""
    vllm_gpu_memory_utilization: float = 0.5
    """Share of GPU memory vLLM may take (colocated with training; the SDAR scripts use 0.5-0.6)."""
    vllm_enable_sleep_mode: bool = False
    """Release vLLM's weights and KV cache between generations (TRL's vllm_enable_sleep_mode)."""
    threads: int = 0
    """torch CPU threads (0 = leave torch's default)."""
    device: Literal["auto", "cpu"] = "auto"
    """`auto`: accelerate's device (the process's GPU when there is one, else the CPU); `cpu` forces the CPU."""
    teacher_share_prefix: bool = True
    """Score the teacher with the head its prompts share within a task (the skill block, then the student's prompt
    head) computed once per task (same numbers to float rounding, less time)."""
    share_prompt_prefix: bool = True
    """Compute the prompt head that all turn samples of a task share (instructions, task; skills for a skill-prompted
    student) once per task in the old/reference scoring and in each update micro-batch (one process; with several,
    the update forwards full prompts). The same numbers to float rounding; False forwards every full prompt."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """accelerate's autocast for the gradient forward (fp32 master weights and optimizer state); `bf16` on GPUs."""


# ----------------------------------------------------------------------------------------------------------
# checkpoints: model, optimizer, scheduler and RNG state, written atomically


def save_checkpoint(
    path: Path, *, step: int, model, tokenizer, optimizer, scheduler, metrics_lines: int
) -> None:
    """`path/model` is a standard Hugging Face directory (weights + tokenizer); `path/state.pt` the rest."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "metrics_lines": metrics_lines,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        },
        tmp / "state.pt",
    )
    old = path.with_name(path.name + ".old")
    if path.exists():  # after a crash between the renames only `path.old` is left: it must survive this save
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
    tmp.rename(path)  # the last complete checkpoint is always either `path` or `path.old`
    shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    for name in ("checkpoint", "checkpoint.old"):
        p = run_dir / name
        if (p / "state.pt").is_file() and (p / "model" / "config.json").is_file():
            return p
    return None


def checkpoint_step(ckpt: Path) -> int:
    """The step a checkpoint was saved after, read without loading the optimizer state into memory."""
    return int(torch.load(ckpt / "state.pt", weights_only=False, mmap=True, map_location="cpu")["step"])


class NonFiniteLossError(RuntimeError):
    pass


def step_seed(seed: int, step: int) -> int:
    """A per-step seed: sampling at step k depends only on (seed, k), which makes resume exact."""
    return (seed * 1_000_003 + step * 7919) % (2**31 - 1)


def pad_rows(rows: list[torch.Tensor], T: int) -> torch.Tensor:
    out = torch.zeros(len(rows), T)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r[:T]
    return out


def append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()


def truncate_jsonl(path: Path, lines: int, step: int | None) -> None:
    """Keep the metric lines the checkpoint saw (`lines`), less those a resume from it at `step` rewrites.

    Every line with a step >= `step` goes: the records of steps run after the checkpoint, and a finished run's
    final eval-only line at `step`, which a run extended to more steps writes inside step `step`'s record
    instead. So an extended run killed before its next checkpoint and resumed again leaves no duplicate.
    `step=None`: nothing is rerun (the checkpoint is at or past the last step), so the seen lines all stay."""
    if path.exists():
        seen = path.read_text().splitlines(keepends=True)[:lines]
        kept = [s for s in seen if step is None or json.loads(s)["step"] < step]
        path.write_text("".join(kept))


def now() -> float:
    return time.perf_counter()


# ----------------------------------------------------------------------------------------------------------
# the loop


def rl_task_ids(suite, cfg) -> list[str]:
    """The train-panel tasks RL samples from: all of them, or with `train.fresh_tasks` those the warm start
    (configured by `cfg.warmstart`) did not demonstrate."""
    from sdar.warmstart import demonstrated_task_ids

    train_ids = list(suite.panel("train").task_ids)
    if not cfg.train.fresh_tasks:
        return train_ids
    shown = demonstrated_task_ids(suite, cfg.warmstart)
    seen = set(shown)
    fresh = [t for t in train_ids if t not in seen]
    if not fresh:
        raise ValueError(
            f"train.fresh_tasks: the warm start's {len(shown)} episodes cover all {len(train_ids)} {suite.name} "
            "train tasks; lower warmstart.episodes or set train.fresh_tasks=false"
        )
    return fresh


def _ids(keys: list) -> torch.Tensor:
    """Hashable keys -> dense int ids in order of first appearance."""
    table: dict = {}
    return torch.tensor([table.setdefault(k, len(table)) for k in keys], dtype=torch.long)


def train(cfg, run_dir: Path, *, model_dir: Path, log=print) -> dict:
    """Train one cell (method × env × model × seed) from the checkpoint in `model_dir` into `run_dir`.

    Resumes from `run_dir/checkpoint` when present. Returns the last metrics record.
    """
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from transformers import AutoModelForCausalLM

    from envs.registry import make_suite
    from envs.skills import SkillProvider, teacher_prefix
    from sdar.evaluate import eval_task_ids, evaluate_panel
    from sdar.methods import compute_advantages, get_method, total_loss
    from sdar.models import load_tokenizer
    from sdar.policy import make_policy, prefix_cuts, shared_batched_logprobs, shared_sequence_logprobs
    from sdar.rollout import mixed_group_ratio, rollout, summarize
    from sdar.teacher import teacher_logprobs

    # ---- setup
    tc, oc, run = cfg.train, cfg.objective, cfg.run
    method = get_method(run.method)
    if not method.trains:
        raise ValueError(
            f"method {run.method!r} is evaluation-only (it evaluates the {method.checkpoint!r} checkpoint)"
        )
    if tc.threads:
        torch.set_num_threads(tc.threads)
    # one process per device (`accelerate launch` / torchrun); a plain call is one process on GPU 0 or the CPU
    accelerator = Accelerator(cpu=tc.device == "cpu", mixed_precision=tc.mixed_precision)
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process
    log(f"device {device}, {world} process(es), mixed precision {tc.mixed_precision}")
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    ckpt = latest_checkpoint(run_dir)
    # a finished run called again trains nothing: no model is loaded and its files stay as they are
    state = torch.load(ckpt / "state.pt", weights_only=False, mmap=True, map_location="cpu") if ckpt else None
    if state is not None and state["step"] >= tc.steps:
        if main:
            truncate_jsonl(metrics_path, state["metrics_lines"], None)
        log(
            f"{run_dir} is finished ({ckpt.name} at step {state['step']}, {tc.steps} asked): nothing to train"
        )
        lines = metrics_path.read_text().splitlines() if metrics_path.exists() else []
        return json.loads(lines[-1]) if lines else {}
    suite = make_suite(run.env, getattr(cfg.envs, run.env), cache_dir=cfg.paths.env_cache)
    skills = SkillProvider(run.env, cfg.skills)
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(ckpt / "model" if ckpt else model_dir, dtype=torch.float32)
    model.to(device).train()
    ref = None
    if oc.kl_coef > 0:  # reference = the initial weights (low_var_kl to the warm start)
        ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        ref = ref.to(device).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    # DDP wrapper for the gradient path (identity on one process); generation and no-grad scoring use `base`
    model, optimizer = accelerator.prepare(model, optimizer)
    base = accelerator.unwrap_model(model)
    policy = make_policy(tc.backend, base, tokenizer, tc)
    warmup = max(1, int(tc.warmup_ratio * tc.steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warmup) if tc.warmup_ratio else 1.0
    )
    start = 0
    if ckpt:
        state = torch.load(ckpt / "state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        if main:  # the lines of the steps the resume runs again go
            truncate_jsonl(metrics_path, state["metrics_lines"], start)
        log(f"resumed from {ckpt} at step {start}")
    elif main:  # a fresh run never appends to stale logs
        metrics_path.unlink(missing_ok=True)
        (run_dir / "timings.jsonl").unlink(missing_ok=True)
    train_ids = rl_task_ids(suite, cfg)
    eval_ids = eval_task_ids(suite, tc.eval_episodes)
    student_prefix = (lambda task: teacher_prefix(skills.skills_for(task))) if method.train_skills else None
    eval_temperature = getattr(cfg.eval, f"{run.env}_temperature")

    def evaluate(step: int) -> dict:
        m = evaluate_panel(
            policy, suite, eval_ids, temperature=eval_temperature, seed=step_seed(run.seed + 10_000, step)
        )
        return {f"eval/{k}": v for k, v in m.items()}

    record: dict = {}
    elapsed = 0.0  # wall time of the steps run by this process, for the ETA in the progress line
    for step in range(start, tc.steps):
        t0 = now()
        seed = step_seed(run.seed, step)
        random.seed(seed + rank)
        np.random.seed((seed + rank) % (2**32))
        torch.manual_seed(seed + rank)
        record = {"step": step}
        if tc.eval_every and step % tc.eval_every == 0:
            record.update(evaluate(step) if main else {})
            accelerator.wait_for_everyone()

        # ---- rollout: G episodes per task, one sample per turn; each process takes every world-th task
        tasks = list(
            np.random.default_rng(seed).choice(
                train_ids, size=min(tc.tasks_per_step, len(train_ids)), replace=False
            )
        )[rank::world]
        samples, episodes = rollout(policy, suite, tasks, group_size=tc.group_size, temperature=tc.rollout_temperature,
                                    top_p=tc.top_p, student_prefix=student_prefix, uid_prefix=f"{step}/")  # fmt: skip
        t_rollout = now() - t0
        all_episodes = gather_object(episodes) if world > 1 else episodes
        record.update({f"rollout/{k}": v for k, v in summarize(all_episodes, suite.columns).items()})
        record["rollout/mixed_group_ratio"] = mixed_group_ratio(all_episodes)

        # ---- advantages over all step samples of each group
        scores = torch.tensor([s.reward for s in samples])
        adv, adv_metrics = compute_advantages(
            run.method, scores=scores, group_ids=_ids([s.uid for s in samples]), mask=torch.ones(len(samples), 1), cfg=oc,
            traj_ids=torch.tensor([s.episode for s in samples]),
            step_rewards=torch.tensor([s.step_reward - suite.invalid_penalty * (not s.valid) for s in samples]),
            anchor_ids=_ids([(s.uid, s.anchor) for s in samples]),
        )  # fmt: skip
        adv = adv[:, 0]
        keep = list(range(len(samples)))
        if tc.skip_zero_advantage_groups:
            keep = [i for i in keep if adv[i].abs() > 0]

        # ---- no-grad scoring: old (rollout-time) weights, reference, teacher on the skill prompt
        t1 = now()
        prompts = [list(samples[i].prompt_ids) for i in keep]
        responses = [list(samples[i].response_ids) for i in keep]
        groups = [samples[i].uid for i in keep]
        cuts = prefix_cuts(prompts, groups) if tc.share_prompt_prefix else [0] * len(keep)
        model.eval()  # no dropout in the tiny models, but keep scoring deterministic
        scoring = dict(
            pad_id=tokenizer.pad_token_id, groups=groups, cuts=cuts, batch_size=tc.logprob_batch_size
        )
        old = shared_batched_logprobs(base, prompts, responses, **scoring)
        refs = shared_batched_logprobs(ref, prompts, responses, **scoring) if ref else old
        teacher = None
        if method.needs_teacher:
            skill_texts = [skills.skills_for(suite.task(samples[i].task_id)) for i in keep]
            teacher = teacher_logprobs(base, tokenizer, prompts, responses, skill_texts,
                                       max_prompt_tokens=tc.max_prompt_tokens, batch_size=tc.logprob_batch_size,
                                       share_prefix=tc.teacher_share_prefix, groups=groups)  # fmt: skip
        model.train()
        t_score = now() - t1

        # ---- update: one PPO epoch of mini-batches, micro-batch gradient accumulation
        t2 = now()
        order = np.random.default_rng(seed + 1 + rank).permutation(len(keep))
        n_minibatches = math.ceil(len(order) / tc.minibatch_size)
        if world > 1:  # every process must take the same number of optimizer steps (DDP all-reduces)
            n_minibatches = max(gather_object([n_minibatches]))
        sums: dict[str, float] = {}
        n_updates, grad_norms = 0, []
        grad_cuts = cuts if world == 1 else [0] * len(keep)  # DDP: one forward per backward
        for _epoch in range(tc.ppo_epochs):
            for mb in np.array_split(order, n_minibatches) if n_minibatches else []:
                micro = [mb[k : k + tc.micro_batch_size] for k in range(0, len(mb), tc.micro_batch_size)]
                optimizer.zero_grad(set_to_none=True)
                if not micro:  # this process ran out of samples: a zero loss keeps the all-reduce in step
                    accelerator.backward(sum(p.sum() for p in model.parameters()) * 0.0)
                for j, idx in enumerate(micro):
                    idx = list(idx)
                    logp, mask, ent = shared_sequence_logprobs(
                        model, [prompts[i] for i in idx], [responses[i] for i in idx], tokenizer.pad_token_id,
                        [groups[i] for i in idx], [grad_cuts[i] for i in idx], with_entropy=True,
                    )  # fmt: skip
                    T = mask.shape[1]
                    batch = LossBatch(
                        logp=logp, old_logp=pad_rows([old[i] for i in idx], T), ref_logp=pad_rows([refs[i] for i in idx], T),
                        mask=mask, advantages=adv[[keep[i] for i in idx]].to(device).unsqueeze(-1) * mask, entropy=ent,
                        teacher_logp=pad_rows([teacher[i] for i in idx], T) if teacher is not None else None, step=step,
                    ).to(device)  # fmt: skip
                    loss, m = total_loss(run.method, batch, oc)
                    if not torch.isfinite(loss):
                        raise NonFiniteLossError(
                            f"non-finite loss ({loss.item()}) at step {step} ({run.method}/{run.env}); "
                            f"last checkpoint left intact in {run_dir}"
                        )
                    # gradients are all-reduced once per mini-batch, at its last micro-batch
                    sync = accelerator.no_sync(model) if j + 1 < len(micro) else contextlib.nullcontext()
                    with sync:
                        accelerator.backward(loss / len(micro))
                    for k, v in m.items():
                        sums[k] = sums.get(k, 0.0) + float(v) / len(micro)
                gn = float(accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip))
                if not math.isfinite(gn):
                    raise NonFiniteLossError(
                        f"non-finite gradient norm at step {step}; last checkpoint left intact in {run_dir}"
                    )
                optimizer.step()
                grad_norms.append(gn)
                n_updates += 1
        scheduler.step()
        policy.sync_weights()

        # ---- metrics and checkpoint (the main process writes; loss metrics are averaged over processes)
        sums = {k: v / max(1, n_updates) for k, v in sums.items()}
        if world > 1:
            parts = gather_object([sums])
            sums = {k: sum(p.get(k, 0.0) for p in parts) / len(parts) for k in sorted(set().union(*parts))}
        record.update(sums)
        record.update({f"adv/{k}": float(v) for k, v in adv_metrics.items()})
        record.update({
            "grad_norm": sum(grad_norms) / max(1, len(grad_norms)), "optimizer_steps": n_updates,
            "samples": len(keep), "tokens": sum(map(len, responses)), "lr": scheduler.get_last_lr()[0],
        })  # fmt: skip
        if world > 1:
            record["samples"], record["tokens"] = (
                sum(gather_object([record[k]])) for k in ("samples", "tokens")
            )
        if not main:
            accelerator.wait_for_everyone()  # the main process evaluates and saves
            continue
        append_jsonl(metrics_path, _rounded(record))
        if step + 1 == tc.steps and tc.eval_every:  # the curve's last point, after the final update
            append_jsonl(metrics_path, _rounded({"step": tc.steps, **evaluate(tc.steps)}))
        lines = sum(1 for _ in metrics_path.open())
        # wall-clock figures live apart from metrics.jsonl, which must be identical across reruns
        timing = {
            "step": step,
            "rollout_s": t_rollout,
            "score_s": t_score,
            "update_s": now() - t2,
            "step_s": now() - t0,
        }
        if device.type == "cuda":
            timing["gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        append_jsonl(run_dir / "timings.jsonl", {k: round(v, 3) for k, v in timing.items()})
        if (step + 1) % tc.checkpoint_every == 0 or step + 1 == tc.steps:
            save_checkpoint(
                run_dir / "checkpoint",
                step=step + 1,
                model=base,
                tokenizer=tokenizer,
                optimizer=optimizer,
                scheduler=scheduler,
                metrics_lines=lines,
            )
        elapsed += timing["step_s"]
        eta = elapsed / (step + 1 - start) * (tc.steps - step - 1)
        log(f"step {step + 1}/{tc.steps} success={record['rollout/success_rate']:.3f} "
            f"eval={record.get('eval/success_rate', float('nan')):.3f} {timing['step_s']:.1f}s "
            f"eta {int(eta // 60)}m{int(eta % 60):02d}s")  # fmt: skip
        accelerator.wait_for_everyone()
    return record


def _rounded(record: dict) -> dict:
    """Floats rounded to 6 significant digits so metrics.jsonl is stable text (timings are kept separate)."""
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in record.items()}

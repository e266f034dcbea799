"""Warm start (issue #5): supervised fine-tuning on noisy expert trajectories -> the `vanilla` checkpoint.

What: the tiny models are built from scratch, so "Vanilla" (the instruct model every method starts from in the
paper) is made here: one multi-task SFT run over all three environments (DESIGN.md §10), with TRL's
`SFTTrainer` on a prompt-completion dataset (loss on the completion tokens, or on prompt and completion:
`completion_only_loss`). TRL's GPU-oriented defaults are off on the tiny models (same losses, 1.74x per step,
benchmarks/sft_step.py): activation checkpointing (`gradient_checkpointing`) and its chunked LM head
(`fused_lm_head`; the model's own causal-LM loss instead).

- Every example is one turn of a demonstration episode played on a train-panel task. Its prompt is exactly the
  rollout's (sdar/rollout.py): `chat_prompt(tokenizer, prefix + suite.prompt(task, history[-H:], obs, turn))`
  with history `Turn(observation, info.get("action", reply))`; its completion is the reply plus `<|im_end|>`.
- Demonstration noise (CALIBRATION.md): with probability `noise_eps` the demonstrator takes
  `suite.random_action` instead of the expert's action and the episode goes on from there; the target is what
  the demonstrator did. Noise keeps Vanilla clearly below the expert, so RL has room.
- A `skills_share` of the episodes carry `teacher_prefix(skills)` so the model learns to read skills. Where the
  prefix goes (`skills_placement`): "student" puts it at the start of the user message (Skill-GRPO's student and
  the `*` evaluations, rollout's `student_prefix`), "teacher" puts it before the chat-templated text (SDAR's
  teacher, sdar/teacher.py), "both" alternates between the two over the skill episodes.
- Copy augmentation (`rename_share`, off by default): in that share of the examples, what the reply copies from
  the prompt (`EnvSuite.copied_spans`: WebShop's keywords, ids and option values, Search-QA's queries and
  answers) is renamed in prompt and reply alike. A tiny model otherwise recalls the demonstrated phrases
  instead of copying (docs/mini_calibration.md, session 6), which WebShop and Search-QA need at evaluation.
- Induction pretraining (`copy_steps`, off by default): before the SFT, the base model trains on the copy task
  `[span][filler][span]` (loss on the repeat), which forms the induction heads that continuing a quoted passage
  sentence needs and that SFT on demonstrations alone does not form (docs/mini_calibration.md, session 10).

Departures: the paper starts from Qwen instruct models and does no SFT of its own; this step stands in for the
instruction tuning a tiny from-scratch model lacks. Examples longer than `max_seq_len` tokens are dropped (not
truncated), so no trained prompt differs from what the rollout would feed the model.

Run: `sdar-bench warmstart --model tiny-qwen3 --model-dir BASE --out VANILLA --profile mini`;
tests: `python -m pytest tests/test_warmstart.py -q`.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.base import EnvSuite, Turn, round_robin

# ----------------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class WarmstartConfig:
    """Supervised warm start on noisy expert demonstrations (the `vanilla` checkpoint)."""

    envs: tuple[str, ...] = ("alfworld", "webshop", "search_qa")
    """Environments whose train panels supply demonstrations (one multi-task model for all of them)."""
    episodes: int = 400
    """Demonstration episodes per environment (the first train-panel tasks in `task_order`, cycling if the panel
    is shorter)."""
    task_order: Literal["panel", "by_category"] = "panel"
    """Which train tasks are demonstrated: the panel's first `episodes` (`panel`), or the first of a round robin
    over the task categories (`by_category`; Search-QA's panel lists its seven sources in blocks of 200, so its
    first 1,000 tasks hold no musique or bamboogle question). `train.fresh_tasks` keeps RL off these tasks."""
    episodes_per_env: dict[str, int] = field(default_factory=dict)
    """Per-environment override of `episodes`, to balance the mix (a Search-QA episode has ~2 turns, an ALFWorld
    one ~8, so equal episode counts give Search-QA ~13 % of the examples)."""
    noise_eps: float = 0.2
    """Probability that the demonstrator takes `suite.random_action` instead of the expert's action."""
    expert_turns_only: bool = False
    """Train only on turns where the expert acted (noisy turns still shape the history); False = CALIBRATION's
    setting, every turn's target is what the demonstrator did."""
    skills_share: float = 0.25
    """Fraction of episodes (per environment, rounded) whose prompts carry `teacher_prefix(skills)`."""
    skills_placement: Literal["student", "teacher", "both"] = "both"
    """Where skill text goes: in the user message (student), before the chat template (teacher), or alternating."""
    completion_only_loss: bool = True
    """Loss on the reply tokens only (True) or on prompt and reply (False: ~10x more tokens of signal per
    forward, including the copying of entity names the prompts repeat; the prompts are the environments' text)."""
    rename_share: float = 0.0
    """Copy augmentation: the fraction of examples in which each span the reply copies from the prompt
    (`EnvSuite.copied_spans`: search keywords, product ids, option values, entity names) is renamed, in prompt
    and reply alike, to words drawn from the environment's other copied spans (ids: random characters of the
    same kind). The renamed reply can only be predicted by copying, not by recalling a memorised phrase.
    0 = off (the demonstrations as played)."""
    copy_steps: int = 0
    """Induction pretraining before the SFT: optimizer steps of the copy task (`[span][filler][span]`, loss on
    the repeated span; half the spans random tokens, half windows of the demonstrations' prompts) on the base
    model. A tiny model trained from scratch on demonstrations forms no induction heads (copy probe 0.001),
    so it cannot continue a passage sentence it started quoting; ~1,000 steps of this task form them (probe
    0.99). 0 = off (the SFT starts from the base model)."""
    copy_target_accuracy: float = 0.0
    """Stop the copy task early, once the mean span accuracy of the last `copy_window` steps reaches this value
    (`copy_steps` is then the cap). The accuracy sits near 0.45 until the induction heads form, then jumps to
    ~0.9 within ~100 steps (around step 1,000 at batch 32) and creeps to ~0.98 by step 2,000. 0 = off: run all
    `copy_steps`."""
    copy_window: int = 50
    """Steps averaged for `copy_target_accuracy`."""
    copy_batch_size: int = 32
    """Copy-task sequences per optimizer step."""
    copy_lr: float = 2e-3
    """Copy-task learning rate (AdamW, 100 steps of linear warmup, then constant)."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    epochs: float = 3.0
    """Passes over the dataset."""
    max_steps: int = 0
    """Optimizer steps; > 0 overrides `epochs`."""
    batch_size: int = 32
    """Examples (turns) per optimizer step."""
    max_seq_len: int = 1024
    """Longest prompt + completion in tokens; longer examples are dropped."""
    warmup_ratio: float = 0.05
    """Fraction of the steps with linear warmup before the cosine decay."""
    lr_scheduler: str = "cosine"
    """transformers scheduler name after warmup."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward (TRL's `SFTConfig` default is True). It saves memory; on the tiny
    models on CPU it cost ~0.25 s of a 1.36 s step, with the same numbers (benchmarks/sft_step.py)."""
    fused_lm_head: bool = False
    """Use TRL's chunked LM head for the SFT loss (`SFTTrainer`'s own `compute_loss`: per-token log-probs in
    chunks, without materialising the logits, plus entropy and token-accuracy metrics). It saves GPU memory on
    large vocabularies; on the tiny models on CPU it took ~0.45 s of a 1.2 s step. False = the model's own
    causal-LM loss (`transformers.Trainer.compute_loss`), the same token-mean NLL over the same labels
    (benchmarks/sft_step.py)."""
    logging_steps: int = 10
    """Loss logging interval (the loss curve in warmstart.json)."""
    seed: int = 0
    """Seed of demonstration noise, skill-episode choice, data order and dropout."""

    def __post_init__(self):
        from envs.registry import ENVS

        unknown = [e for e in (*self.envs, *self.episodes_per_env) if e not in ENVS]
        if unknown or not self.envs:
            raise ValueError(f"warmstart.envs: unknown {unknown}; valid choices: {', '.join(ENVS)}")
        if not all(0.0 <= x <= 1.0 for x in (self.noise_eps, self.skills_share, self.rename_share)):
            raise ValueError("warmstart.noise_eps, skills_share and rename_share must lie in [0, 1]")
        if self.copy_steps < 0 or self.copy_batch_size < 1 or self.copy_window < 1:
            raise ValueError("warmstart.copy_steps must be >= 0, copy_batch_size and copy_window >= 1")
        if not 0.0 <= self.copy_target_accuracy <= 1.0:
            raise ValueError("warmstart.copy_target_accuracy must lie in [0, 1] (0 = run all copy_steps)")


# ----------------------------------------------------------------------------------------------------------
# demonstrations -> prompt-completion examples


def _env_seed(seed: int, env: str) -> int:
    return seed * 1_000_003 + zlib.crc32(env.encode())  # stable across processes (no hash randomisation)


def demo_task_ids(
    task_ids: Sequence[str], category_of: Callable[[str], str], n: int, order: str
) -> list[str]:
    """The `n` train tasks the warm start plays, in order, cycling when the panel is shorter.

    `order="by_category"` first deals the panel round robin over the categories (in order of first appearance):
    ids a1 a2 b1 b2 c1 -> a1 b1 c1 a2 b2."""
    ids = round_robin(task_ids, category_of) if order == "by_category" else list(task_ids)
    if n and not ids:
        raise ValueError("the train panel is empty: nothing to demonstrate")
    return [ids[k % len(ids)] for k in range(n)]


def demonstrated_task_ids(suite, cfg: WarmstartConfig) -> list[str]:
    """The train tasks `demo_examples` plays on `suite`: `cfg.episodes` (or `episodes_per_env[suite.name]`) of
    them in `cfg.task_order`; the trainer's `train.fresh_tasks` leaves these out."""
    n = cfg.episodes_per_env.get(suite.name, cfg.episodes)
    return demo_task_ids(suite.panel("train").task_ids, lambda t: suite.task(t).category, n, cfg.task_order)


def skill_episodes(n: int, share: float, rng: random.Random) -> set[int]:
    """Indices of the round(share * n) episodes that carry skills."""
    return set(rng.sample(range(n), round(share * n)))


_LETTERS = re.compile(r"[A-Za-z]+")
_HEX = set("abcdefABCDEF")


def copy_word_pool(spans) -> list[str]:
    """Sorted distinct lowercase words (2+ letters) of the copied spans: what renamed words are drawn from."""
    return sorted({w.lower() for span in spans for w in span.split() if _LETTERS.fullmatch(w) and len(w) > 1})


def fresh_word(word: str, pool: Sequence[str], rng: random.Random) -> str:
    """A stand-in for `word`: another pool word for a word of letters; for an id or a number (any digit), the
    same first character, then a random digit per digit and a random letter per letter (hex letters if all of
    the word's letters are hex); any other word is kept."""
    if any(c.isdigit() for c in word):
        letters = "abcdef" if set(filter(str.isalpha, word)) <= _HEX else "abcdefghijklmnopqrstuvwxyz"
        tail = [rng.choice("0123456789") if c.isdigit() else rng.choice(letters) if c.isalpha() else c
                for c in word[1:]]  # fmt: skip
        return word[0] + "".join(tail)
    if _LETTERS.fullmatch(word) and pool:
        others = [w for w in pool if w != word.lower()] or list(pool)
        return rng.choice(others)
    return word


def _same_case(old: str, new: str) -> str:
    """`new` (lowercase words) cased like `old`, word by word: UPPER, Capitalised or lower."""
    out = []
    for o, n in zip(old.split(" "), new.split(" "), strict=True):
        out.append(n.upper() if o.isupper() else n[:1].upper() + n[1:] if o[:1].isupper() else n.lower())
    return " ".join(out)


def rename_copies(prompt: str, completion: str, spans: Sequence[str], pool: Sequence[str],
                  rng: random.Random) -> tuple[str, str, int]:  # fmt: skip
    """Rename every span of `spans` that the prompt holds (whole words, any case) in prompt and completion.

    Each span is replaced word by word (`fresh_word`), each occurrence keeping its own case, so the reply still
    copies the prompt, now something no demonstration showed. Spans the prompt does not hold are left as they
    are (renaming them would make the reply unpredictable). Returns (prompt, completion, spans renamed).
    """
    renamed = 0
    for span in dict.fromkeys(s for s in spans if s.strip()):
        pattern = re.compile(rf"(?<!\w){re.escape(span)}(?!\w)", re.IGNORECASE)
        if not pattern.search(prompt):
            continue
        new = " ".join(fresh_word(w, pool, rng).lower() for w in span.split(" "))

        def cased(m: re.Match, new: str = new) -> str:
            return _same_case(m.group(0), new)

        prompt, completion = pattern.sub(cased, prompt), pattern.sub(cased, completion)
        renamed += 1
    return prompt, completion, renamed


def demo_examples(
    suite: EnvSuite,
    tokenizer,
    cfg: WarmstartConfig,
    *,
    skills_for: Callable | None = None,
) -> tuple[list[dict], dict]:
    """Play `cfg.episodes` (or `cfg.episodes_per_env[env]`) noisy demonstrations of `suite`'s train panel; one example per kept turn.

    `skills_for(task) -> str` gives the skill text of a task (needed when `cfg.skills_share > 0`). Returns the
    examples (`prompt`, `completion`, plus `env`, `task_id`, `turn`, `skills`, `expert` columns) and a summary.
    """
    from envs.skills import teacher_prefix
    from sdar.policy import chat_prompt

    rng = random.Random(_env_seed(cfg.seed, suite.name))
    task_ids = demonstrated_task_ids(suite, cfg)
    n = len(task_ids)
    with_skills = skill_episodes(n, cfg.skills_share, rng) if cfg.skills_share > 0 else set()
    if with_skills and skills_for is None:
        raise ValueError("skills_share > 0 needs skills_for")
    # "both": the even-ranked skill episodes put skills in the student's message, the odd-ranked before it
    order = {k: j for j, k in enumerate(sorted(with_skills))}
    eos = tokenizer.eos_token
    examples: list[dict] = []
    wins = turns = expert_turns = 0
    for k in range(n):
        task_id = task_ids[k]
        task = suite.task(task_id)
        placement = cfg.skills_placement
        if placement == "both":
            placement = ("student", "teacher")[order[k] % 2] if k in with_skills else ""
        skill = teacher_prefix(skills_for(task)) if k in with_skills else ""
        student = skill if placement == "student" else ""
        outer = skill if placement == "teacher" else ""
        env = suite.make_env()
        obs = env.reset(task_id)
        history: list[Turn] = []
        for turn in range(suite.max_turns):
            content = student + suite.prompt(task, history[-suite.history_length :], obs, turn)
            expert = rng.random() >= cfg.noise_eps
            reply = suite.expert_action(env) if expert else suite.random_action(env, obs, rng)
            if expert or not cfg.expert_turns_only:
                examples.append({"prompt": outer + chat_prompt(tokenizer, content, enable_thinking=False),
                                 "completion": reply + eos, "env": suite.name, "task_id": task_id,
                                 "turn": turn, "skills": bool(skill), "expert": expert,
                                 "renamed": False})  # fmt: skip
            res = env.step(reply)
            turns += 1
            expert_turns += expert
            history.append(Turn(obs.text, res.info.get("action", reply)))
            obs = res.observation
            if res.done:
                wins += res.success
                break
        env.close()
    renamed = 0
    if cfg.rename_share > 0:  # its own stream: the demonstrations played are the same with or without it
        spans = [suite.copied_spans(e["completion"].removesuffix(eos)) for e in examples]
        pool = copy_word_pool(s for sp in spans for s in sp)
        rename_rng = random.Random(_env_seed(cfg.seed, suite.name) + 1)
        for e, sp in zip(examples, spans, strict=True):
            if sp and rename_rng.random() < cfg.rename_share:
                e["prompt"], e["completion"], k = rename_copies(
                    e["prompt"], e["completion"], sp, pool, rename_rng
                )
                e["renamed"] = k > 0
                renamed += k > 0
    summary = {"episodes": n, "skill_episodes": len(with_skills), "demo_success_rate": wins / max(1, n),
               "turns": turns, "expert_turns": expert_turns, "examples": len(examples),
               "renamed_examples": renamed}  # fmt: skip
    return examples, summary


def build_dataset(cfg: WarmstartConfig, suites: dict[str, EnvSuite], tokenizer, skills_cfg=None, log=print):
    """The multi-task SFT dataset (a `datasets.Dataset` in memory) and per-env summaries."""
    from datasets import Dataset

    from envs.skills import SkillProvider

    rows: list[dict] = []
    per_env: dict[str, dict] = {}
    for name in cfg.envs:
        t0 = time.perf_counter()
        skills = SkillProvider(name, skills_cfg) if cfg.skills_share > 0 else None
        ex, summary = demo_examples(
            suites[name], tokenizer, cfg, skills_for=skills.skills_for if skills else None
        )
        lengths = [len(x) for x in tokenizer([e["prompt"] + e["completion"] for e in ex],
                                             add_special_tokens=False).input_ids]  # fmt: skip
        kept = [e for e, n in zip(ex, lengths) if n <= cfg.max_seq_len]
        summary.update(dropped_too_long=len(ex) - len(kept), examples=len(kept),
                       tokens=sum(n for n in lengths if n <= cfg.max_seq_len),
                       seconds=round(time.perf_counter() - t0, 1))  # fmt: skip
        per_env[name] = summary
        log(f"warmstart data {name}: {summary}")
        rows += kept
    return Dataset.from_list(rows), per_env


# ----------------------------------------------------------------------------------------------------------
# induction pretraining (the copy task)

COPY_TEXT_PROMPTS = 500  # the first SFT prompts whose tokens supply the copy task's text windows


def copy_example(rng: random.Random, token_pool: Sequence[int], text_ids: Sequence[int], *, span: tuple[int, int] = (6, 20),
                 filler: tuple[int, int] = (0, 10)) -> tuple[list[int], list[int]]:  # fmt: skip
    """One copy-task sequence `[s][f][s]` and its labels (-100 everywhere but the repeated `s`).

    `s` has `span` (inclusive) tokens: uniform draws from `token_pool`, or (half the time, when `text_ids` is
    longer than the span) a window of `text_ids`; `f` has `filler` uniform draws. Predicting the second `s` needs
    copying, not recall: what an induction head does. Returns (ids, labels), both of length 2|s| + |f|.
    """
    n = rng.randint(*span)
    if len(text_ids) > n and rng.random() < 0.5:
        i = rng.randrange(len(text_ids) - n)
        s = list(text_ids[i : i + n])
    else:
        s = [rng.choice(token_pool) for _ in range(n)]
    f = [rng.choice(token_pool) for _ in range(rng.randint(*filler))]
    return s + f + s, [-100] * (n + len(f)) + s


def copy_batch(examples: Sequence[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded tensors of `copy_example`s: input_ids, attention_mask, labels (B, T_max)."""
    import torch

    t = max(len(ids) for ids, _ in examples)
    pad = [t - len(ids) for ids, _ in examples]
    return {"input_ids": torch.tensor([ids + [pad_id] * k for (ids, _), k in zip(examples, pad)]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * k for (ids, _), k in zip(examples, pad)]),
            "labels": torch.tensor([lab + [-100] * k for (_, lab), k in zip(examples, pad)])}  # fmt: skip


def span_accuracy(logits, labels) -> float:
    """Share of labelled positions (labels != -100) whose next-token argmax is right; logits (B, T, V), labels (B, T)."""
    pred, target = logits[:, :-1].argmax(-1), labels[:, 1:]
    mask = target != -100
    return float((pred[mask] == target[mask]).float().mean())


def copy_converged(accuracies: Sequence[float], target: float, window: int) -> bool:
    """True when the last `window` per-step span accuracies are all in and their mean is >= `target` (> 0)."""
    return target > 0 and len(accuracies) >= window and sum(accuracies[-window:]) / window >= target


def copy_pretrain(model, cfg: WarmstartConfig, token_pool: Sequence[int], text_ids: Sequence[int], pad_id: int,
                  log=print) -> dict:  # fmt: skip
    """Up to `cfg.copy_steps` AdamW steps of the copy task on `model` (in place), spans drawn from `token_pool`
    and `text_ids`, stopping early once `copy_converged` (`cfg.copy_target_accuracy`); returns the steps run and
    the (step, loss, span accuracy) curve. The first repeated token follows the filler and cannot always be
    predicted, so span accuracy stays below 1."""
    import torch

    rng = random.Random(_env_seed(cfg.seed, "copy"))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.copy_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 100))
    model.train()
    curve: list[tuple[int, float, float]] = []
    accuracies: list[float] = []
    t0 = time.perf_counter()
    step = 0
    for step in range(1, cfg.copy_steps + 1):
        examples = [copy_example(rng, token_pool, text_ids) for _ in range(cfg.copy_batch_size)]
        batch = copy_batch(examples, pad_id)
        out = model(**batch)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        accuracies.append(span_accuracy(out.logits.detach(), batch["labels"]))
        done = copy_converged(accuracies, cfg.copy_target_accuracy, cfg.copy_window)
        if step % cfg.logging_steps == 0 or step == cfg.copy_steps or done:
            curve.append((step, out.loss.item(), accuracies[-1]))
            log(f"copy task step {step}: loss {curve[-1][1]:.3f}, span accuracy {curve[-1][2]:.3f}")
        if done:
            log(f"copy task: mean span accuracy of the last {cfg.copy_window} steps reached "
                f"{cfg.copy_target_accuracy} at step {step} (cap {cfg.copy_steps})")  # fmt: skip
            break
    last = accuracies[-cfg.copy_window :]
    return {"steps": step, "max_steps": cfg.copy_steps, "stopped_early": step < cfg.copy_steps,
            "seconds": round(time.perf_counter() - t0, 1), "curve": curve,
            "span_accuracy_end": curve[-1][2] if curve else None,
            "span_accuracy_window_end": sum(last) / len(last) if last else None}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# training


def sft_config(cfg: WarmstartConfig, output_dir: Path, *, use_cpu: bool):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir), per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=1,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1, learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm, max_length=cfg.max_seq_len, completion_only_loss=cfg.completion_only_loss, packing=False,
        train_sampling_strategy="group_by_length",  # skill prompts are ~3x longer: batch like with like
        logging_steps=cfg.logging_steps, save_strategy="no", report_to=[], push_to_hub=False,
        seed=cfg.seed, data_seed=cfg.seed, use_cpu=use_cpu, bf16=False, fp16=False,
        dataloader_num_workers=0, disable_tqdm=not sys.stderr.isatty(),  # a bar with ETA in a terminal
        gradient_checkpointing=cfg.gradient_checkpointing,  # TRL's default is True
    )  # fmt: skip


MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids", "labels")


def _with_model_loss(base: type) -> type:
    """`base` (TRL's `SFTTrainer`) with `transformers.Trainer`'s `compute_loss`: the model's own causal-LM loss
    (sum of the labelled tokens' NLL / their count in the batch), instead of TRL's chunked LM head."""
    from transformers import Trainer

    class ModelLossSFTTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = {k: v for k, v in inputs.items() if k in MODEL_INPUTS}  # not TRL's extra columns
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)  # fmt: skip

    return ModelLossSFTTrainer


def train_sft(cfg: WarmstartConfig, dataset, base_dir: Path, out: Path, log=print, model=None) -> dict:
    """SFTTrainer on `dataset` from `model` (default: the checkpoint in `base_dir`, which also gives the
    tokenizer); the result is saved atomically to `out`."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from sdar.models import _save, load_tokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(base_dir)
    tokenizer.padding_side = (
        "right"  # training pads on the right; the saved tokenizer is re-set to left below
    )
    if model is None:
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    work = out / ".trainer"
    shutil.rmtree(work, ignore_errors=True)
    args = sft_config(cfg, work, use_cpu=not torch.cuda.is_available())
    columns = [c for c in dataset.column_names if c not in ("prompt", "completion")]
    trainer_cls = SFTTrainer if cfg.fused_lm_head else _with_model_loss(SFTTrainer)
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset.remove_columns(columns),
                          processing_class=tokenizer)  # fmt: skip
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    curve = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    model = trainer.model.to("cpu").eval()
    tokenizer.padding_side = "left"
    _save(model, tokenizer, out)
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"warmstart sft: {trainer.state.global_step} steps in {seconds:.0f}s, loss {curve[:1]} -> {curve[-1:]}"
    )
    return {"steps": trainer.state.global_step, "train_seconds": round(seconds, 1),
            "train_loss_mean": result.training_loss, "loss_curve": curve,
            "loss_start": curve[0][1] if curve else None, "loss_end": curve[-1][1] if curve else None}  # fmt: skip


def warmstart(root_cfg, base_dir: Path, out: Path, log=print) -> dict:
    """Dataset + SFT + summary (`warmstart.json` is written by the caller). `root_cfg` is the full Config."""
    import torch

    from envs.registry import make_suite
    from sdar.models import load_tokenizer

    cfg: WarmstartConfig = root_cfg.warmstart
    if root_cfg.train.threads:
        torch.set_num_threads(root_cfg.train.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    suites = {
        n: make_suite(n, getattr(root_cfg.envs, n), cache_dir=root_cfg.paths.env_cache) for n in cfg.envs
    }
    tokenizer = load_tokenizer(base_dir)
    dataset, per_env = build_dataset(cfg, suites, tokenizer, root_cfg.skills, log=log)
    data_seconds = time.perf_counter() - t0
    model, copy = None, {}
    if cfg.copy_steps > 0:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        text_ids = [i for p in dataset[:COPY_TEXT_PROMPTS]["prompt"] for i in tokenizer(p).input_ids]
        special = set(tokenizer.all_special_ids)
        pool = [i for i in range(min(len(tokenizer), model.config.vocab_size)) if i not in special]
        copy = {"copy": copy_pretrain(model, cfg, pool, text_ids, tokenizer.pad_token_id, log=log)}
    sft = train_sft(cfg, dataset, base_dir, out, log=log, model=model)
    return {"envs": per_env, "examples": len(dataset), "tokens": sum(e["tokens"] for e in per_env.values()),
            "data_seconds": round(data_seconds, 1), **copy, **sft,
            "wall_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# a stored warm start (results/baselines/<set>/warmstarts/<model>/<env>/)

# The settings a warm start depends on (config.resolved.yaml): a stored one is reused only where they agree.
RESTORE_KEYS = ("warmstart", "skills")


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def warmstart_settings(resolved: dict) -> dict:
    """The dotted settings of a resolved config that make its warm start: `warmstart.*`, `skills.*`, the
    model's definition (`models.<alias>.*`) and every warmed environment's own settings (`envs.<env>.*`)."""
    alias = resolved["run"]["model"]
    tree = {k: resolved.get(k) for k in RESTORE_KEYS}
    tree["models"] = {alias: (resolved.get("models") or {}).get(alias)}
    tree["envs"] = {e: (resolved.get("envs") or {}).get(e) for e in resolved["warmstart"]["envs"]}
    return _flat(tree)


def restore_stored(root_cfg, stored: Path, out: Path, log=print) -> dict:
    """Copy a stored warm start into `out`, byte for byte, in place of training one.

    Why: the SFT is exact on one machine, but another CPU (another instruction set, so other float sums)
    makes another model, and ALFWorld's Vanilla read 25-31 % from one build and 45-53 % from another
    (docs/mini_calibration.md, session 28). Cells are comparable only when they start from the same weights,
    so a grid stored over several sittings keeps its warm start beside its results. Every file is copied,
    `run.json` and `warmstart.json` included, so `sdar.models.model_revision` of `out` equals the stored one's
    and the cells' manifests name the same revision. Refuses (nothing written) when a setting it depends on
    (`warmstart_settings`) differs from the stored `config.resolved.yaml`.
    """
    from sdar import configlib
    from sdar.configlib import ConfigError
    from sdar.models import model_revision

    stored, out = Path(stored), Path(out)
    if not (stored / "model.safetensors").is_file() or not (stored / "config.resolved.yaml").is_file():
        raise ConfigError(f"{stored} holds no stored warm start (model.safetensors, config.resolved.yaml)")
    want = warmstart_settings(configlib.to_dict(root_cfg))
    have = warmstart_settings(configlib.read_yaml(stored / "config.resolved.yaml"))
    diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    if diff:
        shown = "; ".join(f"{k}: stored {have.get(k)!r}, asked {want.get(k)!r}" for k in diff[:8])
        raise ConfigError(
            f"the stored warm start {stored} was made with other settings ({shown}); train a new one "
            "(Snakemake: --config warmstart_from_baselines=false) or drop the changed settings"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.restore"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(stored, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    revision = model_revision(out)
    log(f"restored the stored warm start {stored} -> {out} ({revision})")
    return {"restored_from": str(stored), "revision": revision}

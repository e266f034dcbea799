"""Evaluate one cell and write `eval.json` (atomically): the fixed eval panel, the paper's temperature,
skills in the student's prompt for `*` rows (PAPER.md §2.6)."""

from __future__ import annotations

from pathlib import Path

import torch

from sdar.atomic import atomic_write_json


def evaluate_cell(cfg, model_dir: Path, out: Path) -> dict:
    from transformers import AutoModelForCausalLM

    from envs.base import task_ids_sha256
    from envs.registry import make_suite
    from envs.skills import SkillProvider, teacher_prefix
    from sdar.evaluate import eval_task_ids, evaluate_panel
    from sdar.methods import get_method
    from sdar.models import load_tokenizer
    from sdar.policy import make_policy
    from sdar.trainer import step_seed

    run = cfg.run
    method = get_method(run.method)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    suite = make_suite(run.env, getattr(cfg.envs, run.env), cache_dir=cfg.paths.env_cache)
    panel = suite.panel("eval")
    task_ids = eval_task_ids(suite, cfg.eval.episodes)
    tokenizer = load_tokenizer(model_dir)
    device = "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    policy = make_policy(cfg.train.backend, model, tokenizer, cfg.train)
    prefix = None
    if method.eval_skills:
        skills = SkillProvider(run.env, cfg.skills)
        prefix = lambda task: teacher_prefix(skills.skills_for(task))  # noqa: E731
    temperature = getattr(cfg.eval, f"{run.env}_temperature")
    metrics = evaluate_panel(
        policy,
        suite,
        task_ids,
        temperature=temperature,
        seed=step_seed(run.seed + 20_000, 0),
        student_prefix=prefix,
    )
    result = {
        "method": run.method, "env": run.env, "model": run.model, "seed": run.seed, "profile": run.profile,
        "panel_sha256": panel.content_hash, "panel_size": len(task_ids),
        "tasks_sha256": task_ids_sha256(task_ids), "temperature": temperature,
        "skills_in_prompt": method.eval_skills, "columns": list(suite.columns), **metrics,
    }  # fmt: skip
    atomic_write_json(out / "eval.json", result)
    return result

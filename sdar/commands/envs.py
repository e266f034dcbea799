"""`sdar-bench envs list | play | corpus`.

- `envs list`: the registered environments with their columns, turn limits and panel sizes.
- `envs play --env E --policy expert|random --split S --episodes N`: plays the first N tasks of the panel dealt
  round robin over its categories (as evaluations read them, `EnvSuite.dealt_task_ids`) and prints JSON (success
  rate, per-column rates, mean steps, env steps/s, the hash of the task list read).
- `envs corpus --out FILE`: expert-episode text of every environment (prompts and replies, one document per
  line), the corpus the tiny models' tokenizers are trained on.

Every verb builds the environments from the `envs:` section of `--profile P` / `--config F` / `--set k=v` (the
dataclass defaults without them), so the data and panels it writes under `--cache` (default `paths.env_cache`)
are the ones `train` and `evaluate` of that profile read.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from envs.base import Turn, task_ids_sha256
from envs.registry import ENVS, make_suite
from sdar import configlib
from sdar.atomic import atomic_write_text
from sdar.configlib import ConfigError

SKILL_EVERY = 4  # one skill text per 4 expert episodes in the tokenizer corpus


def register(sub) -> None:
    p = sub.add_parser("envs", help="environments: list, play a policy on a panel, dump the text corpus")
    verbs = p.add_subparsers(dest="envs_command", required=True, metavar="VERB")
    ls = verbs.add_parser("list", help="list environments")
    _config_args(ls)
    ls.set_defaults(func=run_list)

    pl = verbs.add_parser("play", help="play the expert or a random-valid-action policy on a task panel")
    pl.add_argument("--env", required=True, help=f"one of: {', '.join(ENVS)}")
    pl.add_argument("--policy", choices=("expert", "random"), default="expert")
    pl.add_argument("--split", default="eval")
    pl.add_argument(
        "--episodes", type=int, default=0,
        help="number of panel tasks, dealt round robin over its categories (0 = the whole panel)",
    )  # fmt: skip
    pl.add_argument("--seed", type=int, default=0)
    _config_args(pl)
    pl.set_defaults(func=run_play)

    co = verbs.add_parser("corpus", help="write the tokenizer corpus (expert episodes of every environment)")
    co.add_argument("--out", type=Path, required=True)
    co.add_argument("--episodes", type=int, default=200, help="expert episodes per environment")
    _config_args(co)
    co.set_defaults(func=run_corpus)


def _config_args(p) -> None:
    from sdar import config as config_mod

    p.add_argument(
        "--cache", type=Path, default=None, help="where generated env data lives (default paths.env_cache)"
    )
    p.add_argument("--profile", default=None, help="config/profiles/<profile>.yaml overrides (default: none)")
    config_mod.add_config_args(p)


def _suite(name: str, args):
    """Environment `name` built from the profile/config overrides (data paths checked first), its data cached
    under `--cache`."""
    from sdar import config as config_mod
    from sdar.commands.train import profile_file
    from sdar.preflight import check_data_paths

    if name not in ENVS:
        raise ConfigError(f"unknown environment {name!r}; valid choices: {', '.join(ENVS)}")
    files = [profile_file(args.profile)] if args.profile else []
    cfg = configlib.load(config_mod.Config, [*files, *args.config], args.set, extra={"run": {"env": name}})
    check_data_paths(cfg)  # missing data: a clear error naming the key, before any work
    return make_suite(name, getattr(cfg.envs, name), cache_dir=args.cache or cfg.paths.env_cache)


def play_episode(suite, task_id: str, policy: str, rng: random.Random) -> tuple[bool, int, list[str]]:
    """Play one episode; return success, steps and the texts seen (prompts and replies)."""
    env = suite.make_env()
    task = suite.task(task_id)
    obs = env.reset(task_id)
    history: list[Turn] = []
    texts: list[str] = []
    success, steps = False, 0
    for turn in range(suite.max_turns):
        prompt = suite.prompt(task, history[-suite.history_length :], obs, turn)
        reply = suite.expert_action(env) if policy == "expert" else suite.random_action(env, obs, rng)
        texts += [prompt, reply]
        res = env.step(reply)
        steps += 1
        history.append(Turn(obs.text, res.info.get("action", reply)))
        obs = res.observation
        if res.done:
            success = res.success
            break
    env.close()
    return success, steps, texts


def run_list(args) -> int:
    rows = []
    for name in ENVS:
        suite = _suite(name, args)
        rows.append({"env": name, "columns": list(suite.columns), "max_turns": suite.max_turns,
                     "history_length": suite.history_length, "invalid_penalty": suite.invalid_penalty,
                     "train_tasks": len(suite.panel("train").task_ids), "eval_tasks": len(suite.panel("eval").task_ids)})  # fmt: skip
    print(json.dumps(rows, indent=1))
    return 0


def run_play(args) -> int:
    suite = _suite(args.env, args)
    panel = suite.panel(args.split)
    ids = suite.dealt_task_ids(args.split, args.episodes)
    rng = random.Random(args.seed)
    per_col: dict[str, list[bool]] = {c: [] for c in suite.columns}
    wins, steps_total = [], 0
    t0 = time.perf_counter()
    for task_id in ids:
        ok, steps, _ = play_episode(suite, task_id, args.policy, rng)
        wins.append(ok)
        steps_total += steps
        per_col.setdefault(suite.task(task_id).category, []).append(ok)
    dt = time.perf_counter() - t0
    out = {
        "env": args.env, "policy": args.policy, "split": args.split, "panel_sha256": panel.content_hash,
        "tasks_sha256": task_ids_sha256(ids), "episodes": len(ids), "success_rate": sum(wins) / max(1, len(wins)),
        "per_column": {c: (sum(v) / len(v) if v else None) for c, v in per_col.items()},
        "mean_steps": steps_total / max(1, len(ids)), "env_steps_per_s": steps_total / dt if dt > 0 else None,
    }  # fmt: skip
    print(json.dumps(out, indent=1))
    return 0


def run_corpus(args) -> int:
    """Expert prompts and replies of every environment; every `SKILL_EVERY`-th episode also carries its skill
    text (as the teacher and Skill-GRPO prompts do), so the BPE learns the skills' words too."""
    from envs.skills import SkillProvider, SkillsConfig, teacher_prefix

    lines: list[str] = []
    rng = random.Random(0)
    for name in ENVS:
        suite = _suite(name, args)
        skills = SkillProvider(name, SkillsConfig())
        for k, task_id in enumerate(suite.panel("train").task_ids[: args.episodes]):
            _, _, texts = play_episode(suite, task_id, "expert", rng)
            if k % SKILL_EVERY == 0:
                lines.append(teacher_prefix(skills.skills_for(suite.task(task_id))).replace("\n", " "))
            lines += [t.replace("\n", " ") for t in texts]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(json.dumps({"out": str(args.out), "documents": len(lines), "characters": sum(map(len, lines))}))
    return 0

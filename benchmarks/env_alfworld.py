"""ALFWorld env speed and reference success rates, printed as JSON.

Measures, on the same machine and the same games:
- `suite_ms_per_step`: AlfworldEnv.step with the expert's replies (parser, wording map, engine, bookkeeping;
  the planner call of the expert is timed apart as `expert_ms_per_step`);
- `raw_ms_per_step`: the bare engine (`textworld.start` + ALFWorld wrappers) replaying the same commands;
- reset cost, expert success and a random-admissible-action policy's success, on generated games and, when
  $ALFWORLD_DATA (or --real) points at real data, on real games.
The target is suite/raw <= 1.2.

Run: `python benchmarks/env_alfworld.py [--games 24] [--random-games 12] [--real ../shared/data/alfworld]`
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

from envs.alfworld import AlfworldConfig, AlfworldSuite


def run_expert(suite: AlfworldSuite, task_ids) -> dict:
    env, wins, steps, t_step, t_expert, t_reset, logs = suite.make_env(), 0, 0, 0.0, 0.0, 0.0, {}
    for tid in task_ids:
        t0 = time.perf_counter()
        env.reset(tid)
        t_reset += time.perf_counter() - t0
        logs[tid] = []
        while not env.done:
            t0 = time.perf_counter()
            reply = suite.expert_action(env)
            t1 = time.perf_counter()
            env.step(reply)
            t_step += time.perf_counter() - t1
            t_expert += t1 - t0
            logs[tid].append(suite.parse_action(reply).action)
            steps += 1
        wins += env.won
    env.close()
    return {"games": len(task_ids), "expert_success": wins / len(task_ids), "mean_steps": steps / len(task_ids),
            "suite_ms_per_step": 1e3 * t_step / steps, "expert_ms_per_step": 1e3 * t_expert / steps,
            "reset_ms": 1e3 * t_reset / len(task_ids), "_logs": logs}  # fmt: skip


def run_raw(games: list[tuple[str, list[str]]]) -> float:
    """ms per step of bare textworld replaying `(game path, commands)`; run in a fresh process, where the
    suite's engine caches (envs/alfworld/engine.py `_speed_up_engine`) are not installed."""
    infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
    tw, steps, t_step = None, 0, 0.0
    for path, commands in games:
        if tw is None:
            tw = textworld.start(path, infos, wrappers=[AlfredDemangler(shuffle=False), AlfredInfos])
        else:
            tw.load(path)
        tw.reset()
        for command in commands:
            t0 = time.perf_counter()
            tw.step(command)
            t_step += time.perf_counter() - t0
            steps += 1
    tw.close()
    return 1e3 * t_step / steps


def run_random(suite: AlfworldSuite, task_ids, seed: int = 0) -> dict:
    rng, env, wins, steps, t_step = random.Random(seed), suite.make_env(), 0, 0, 0.0
    for tid in task_ids:
        obs = env.reset(tid)
        while not env.done:
            t0 = time.perf_counter()
            obs = env.step(f"<think>random</think><action>{rng.choice(obs.admissible)}</action>").observation
            t_step += time.perf_counter() - t0
            steps += 1
        wins += env.won
    env.close()
    return {
        "games": len(task_ids),
        "random_success": wins / len(task_ids),
        "ms_per_step": 1e3 * t_step / steps,
    }


def bench(suite: AlfworldSuite, n_games: int, n_random: int) -> dict:
    ids = suite.dealt_task_ids("eval", n_games)
    out = run_expert(suite, ids)
    games = [(str(suite.game_file(tid)), cmds) for tid, cmds in out.pop("_logs").items()]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        out["raw_ms_per_step"] = pool.submit(run_raw, games).result()
    out["suite_over_raw"] = out["suite_ms_per_step"] / out["raw_ms_per_step"]
    out["random"] = run_random(suite, suite.dealt_task_ids("eval", n_random))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--games", type=int, default=24, help="expert games per source (dealt round robin over the 6 types)"
    )
    ap.add_argument("--random-games", type=int, default=12, help="random-policy games per source")
    ap.add_argument("--real", default=os.environ.get("ALFWORLD_DATA"), help="folder holding json_2.1.1/")
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="alfworld-bench-")
    result = {
        "generated": bench(
            AlfworldSuite(AlfworldConfig(source="generated"), cache), args.games, args.random_games
        )
    }
    if args.real:
        real = AlfworldSuite(
            AlfworldConfig(source="real", data_path=args.real, train_split="valid_train"), cache
        )
        result["real"] = bench(real, args.games, args.random_games)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Multi-turn, step-independent rollouts (PROTOCOL.md §1.2, PAPER.md §2.0).

G environments per task share its initial state (same task id, same uid). At every turn each active
environment's prompt is rebuilt from scratch (task + last H turns + current observation + admissible
actions), all active prompts are generated in one batch, and each reply is stepped in its environment.
Every turn becomes one training sample carrying the episode reward, minus the invalid-action penalty on its
own turn. Finished environments stop producing samples (verl-agent's `active_masks`).

Departure: verl-agent keeps stepping finished envs and drops their samples; we simply do not step them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envs.base import EnvSuite, Task, Turn


@dataclass
class TurnSample:
    uid: str  # GRPO group: all turns of the G episodes of one task in one rollout
    task_id: str
    episode: int  # index of the episode in this rollout
    turn: int
    prompt_content: str  # user-message content (no chat template); the teacher re-wraps the templated text
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    valid: bool
    anchor: str  # observation text at this turn: GiGPO's anchor state
    step_reward: float  # environment reward of this step (GiGPO step returns)
    reward: float = 0.0  # episode reward - penalty * (1 - valid), filled when the episode ends


@dataclass
class EpisodeResult:
    task_id: str
    category: str
    uid: str
    success: bool
    reward: float  # sum of environment rewards (10*won, 10*[score==1], EM)
    score: float  # raw task score (WebShop) or success as 0/1
    turns: int
    valid_turns: int


def rollout(
    policy,
    suite: EnvSuite,
    task_ids: Sequence[str],
    *,
    group_size: int,
    temperature: float,
    top_p: float = 1.0,
    student_prefix: Callable[[Task], str] | None = None,
    uid_prefix: str = "",
) -> tuple[list[TurnSample], list[EpisodeResult]]:
    """Play `group_size` episodes of every task in `task_ids` with `policy`; return turn samples and results.

    `student_prefix(task)` is prepended to the student's prompt (Skill-GRPO / `*` evaluations); None for the
    protocol's default student that never sees skills.
    """
    tasks = [suite.task(t) for t in task_ids for _ in range(group_size)]
    uids = [f"{uid_prefix}{t.task_id}" for t in tasks]
    envs = [suite.make_env() for _ in tasks]
    obs = [env.reset(t.task_id) for env, t in zip(envs, tasks)]
    prefixes = [student_prefix(t) if student_prefix else "" for t in tasks]
    history: list[list[Turn]] = [[] for _ in tasks]
    samples: list[list[TurnSample]] = [[] for _ in tasks]
    total = [0.0] * len(tasks)
    success = [False] * len(tasks)
    score: list[float | None] = [None] * len(tasks)
    active = list(range(len(tasks)))

    for turn in range(suite.max_turns):
        if not active:
            break
        contents = [
            prefixes[i] + suite.prompt(tasks[i], history[i][-suite.history_length :], obs[i], turn)
            for i in active
        ]
        gens = policy.generate(
            contents, temperature=temperature, top_p=top_p, groups=[uids[i] for i in active]
        )
        still = []
        for i, content, gen in zip(active, contents, gens):
            res = envs[i].step(gen.text)
            samples[i].append(
                TurnSample(
                    uid=uids[i],
                    task_id=tasks[i].task_id,
                    episode=i,
                    turn=turn,
                    prompt_content=content,
                    prompt_ids=gen.prompt_ids,
                    response_ids=gen.response_ids,
                    valid=res.valid_action,
                    anchor=obs[i].text,
                    step_reward=res.reward,
                )  # fmt: skip
            )
            history[i].append(Turn(obs[i].text, res.info.get("action", gen.text)))
            obs[i] = res.observation
            total[i] += res.reward
            if res.done:
                success[i] = res.success
                score[i] = res.info.get("task_score")
            else:
                still.append(i)
        active = still

    results = []
    for i, task in enumerate(tasks):
        envs[i].close()
        valid = sum(s.valid for s in samples[i])
        results.append(EpisodeResult(task.task_id, task.category, uids[i], success[i], total[i],
                                     float(success[i]) if score[i] is None else float(score[i]),
                                     len(samples[i]), valid))  # fmt: skip
    penalty = suite.invalid_penalty
    flat = []
    for i, ep in enumerate(samples):
        for s in ep:
            s.reward = total[i] - penalty * (not s.valid)
            flat.append(s)
    return flat, results


def mixed_group_ratio(results: Sequence[EpisodeResult]) -> float:
    """Share of groups (episodes with one uid) whose rewards differ: the groups GRPO learns from."""
    rewards: dict[str, set[float]] = {}
    for r in results:
        rewards.setdefault(r.uid, set()).add(r.reward)
    return sum(len(v) > 1 for v in rewards.values()) / max(1, len(rewards))


def summarize(results: Sequence[EpisodeResult], columns: Sequence[str]) -> dict[str, float]:
    """Success rate, per-column rates, mean score and turns over episodes (metric names without namespace)."""
    n = max(1, len(results))
    out = {
        "success_rate": sum(r.success for r in results) / n,
        "score": sum(r.score for r in results) / n,
        "turns_mean": sum(r.turns for r in results) / n,
        "valid_action_ratio": sum(r.valid_turns for r in results) / max(1, sum(r.turns for r in results)),
        "episodes": len(results),
    }
    for col in columns:
        sel = [r for r in results if r.category == col]
        out[f"{col}_success_rate"] = sum(r.success for r in sel) / len(sel) if sel else float("nan")
    return out

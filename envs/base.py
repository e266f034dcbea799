"""The contract every environment implements (DESIGN.md §5).

An environment family is an `EnvSuite`: it owns the data (real or generated), the fixed task panels, the
prompt template, the pure action parser, the expert and the skill routing key. One episode is an `Env`
obtained from `suite.make_env()`: `reset(task_id) -> Observation`, `step(text) -> StepResult`.

`step` takes the model's raw text. It never raises on any string: text that does not parse is an invalid
action (`valid_action=False`), which is still passed to the simulator as PROTOCOL.md §1.4 prescribes.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------------------------------------
# value types


@dataclass(frozen=True)
class Task:
    """One task of a panel. `category` is the per-column key (ALFWorld task type, Search data source,
    WebShop product category) used for per-column metrics and for skill routing."""

    task_id: str
    category: str
    instruction: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Observation:
    """What the agent sees after reset/step: the observation text and the admissible actions
    (empty where the protocol lists none, e.g. Search-QA)."""

    text: str
    admissible: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedAction:
    """Result of an environment's pure parser: the action string handed to the simulator and whether the
    model's text followed the protocol's format (PROTOCOL.md §1.4)."""

    action: str
    valid: bool


@dataclass(frozen=True)
class StepResult:
    observation: Observation
    reward: float  # environment reward of this step (ALFWorld 10*won, WebShop 10*[score==1], Search EM)
    done: bool
    success: bool  # the protocol's success flag (won / score == 1.0 / EM == 1)
    valid_action: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One (observation, action) pair of the history window shown in later prompts."""

    observation: str
    action: str


# ----------------------------------------------------------------------------------------------------------
# task panels: fixed, ordered lists of task ids with a content hash


@dataclass(frozen=True)
class TaskPanel:
    env: str
    split: str
    task_ids: tuple[str, ...]

    @property
    def content_hash(self) -> str:
        payload = json.dumps([self.env, self.split, list(self.task_ids)]).encode()
        return hashlib.sha256(payload).hexdigest()

    def write(self, path: str | os.PathLike) -> Path:
        """Write the panel atomically as JSON with its hash."""
        path = Path(path)
        data = {
            "env": self.env,
            "split": self.split,
            "sha256": self.content_hash,
            "task_ids": list(self.task_ids),
        }
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> TaskPanel:
        data = json.loads(Path(path).read_text())
        panel = cls(data["env"], data["split"], tuple(data["task_ids"]))
        if panel.content_hash != data["sha256"]:
            raise ValueError(f"task panel {path}: content hash mismatch (file edited by hand?)")
        return panel


def round_robin(task_ids: Sequence[str], category_of: Callable[[str], str]) -> list[str]:
    """`task_ids` dealt round robin over their categories, in order of first appearance: a1 a2 b1 b2 c1 ->
    a1 b1 c1 a2 b2 (a panel that already cycles its categories keeps its order)."""
    queues: dict[str, list[str]] = {}
    for t in task_ids:
        queues.setdefault(category_of(t), []).append(t)
    depth = max(map(len, queues.values()), default=0)
    return [q[k] for k in range(depth) for q in queues.values() if k < len(q)]


def task_ids_sha256(task_ids: Sequence[str]) -> str:
    """Content hash of the task ids an evaluation read, in order (eval.json `tasks_sha256`)."""
    return hashlib.sha256("\n".join(task_ids).encode()).hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write via a temp file in the same directory and rename, so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------------------------------
# the two abstract classes


def compact_prompt(
    instruction: str, history: Sequence[Turn], observation: str, admissible: Sequence[str], step: int
) -> str:
    """The `prompt_style: compact` prompt (a named deviation for the CPU mini profile, docs/protocol_parity.md).

    Same information as verl-agent's step-independent template (task, the last H turns, the current observation,
    the admissible actions, the answer format) without its boilerplate sentences, and with past turns shown as
    their actions only (their observations are what made the prompts long). `history` is already cut to H turns.
    """
    lines = [f"Task: {instruction}"]
    if history:
        first = step - len(history) + 1
        lines.append(
            "Previous actions: " + "; ".join(f"{first + i}. {t.action}" for i, t in enumerate(history))
        )
    lines.append(f"Step {step + 1}. Observation: {observation}")
    lines.append("Admissible actions: " + " | ".join(admissible))
    lines.append("Answer with <think>...</think><action>one admissible action</action>.")
    return "\n".join(lines)


class Env(abc.ABC):
    """One episode at a time. Deterministic given the task id: G copies reset on the same task share the
    same initial state."""

    @abc.abstractmethod
    def reset(self, task_id: str) -> Observation: ...

    @abc.abstractmethod
    def step(self, text: str) -> StepResult:
        """Parse `text` with the suite's parser and advance the simulation. Never raises on any string."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engine resources (processes, files)."""


class EnvSuite(abc.ABC):
    """An environment family: data, panels, prompts, parser, expert, metric columns."""

    name: str
    columns: tuple[str, ...]  # per-column metric keys, in Table 1 order (e.g. pick, look, ... for ALFWorld)
    max_turns: int
    history_length: int
    invalid_penalty: float

    @abc.abstractmethod
    def panel(self, split: str) -> TaskPanel:
        """The fixed ordered task panel of a split ('train', 'eval', ...)."""

    @abc.abstractmethod
    def task(self, task_id: str) -> Task: ...

    def dealt_task_ids(self, split: str, n: int = 0) -> list[str]:
        """The first `n` task ids (0: all) of panel `split` dealt round robin over their categories
        (`round_robin`): what evaluations and `sdar-bench envs play` read, so every category is read alike."""
        return round_robin(self.panel(split).task_ids, lambda t: self.task(t).category)[: n or None]

    @abc.abstractmethod
    def make_env(self) -> Env: ...

    @staticmethod
    @abc.abstractmethod
    def parse_action(text: str) -> ParsedAction:
        """Pure parser of model text into an action (PROTOCOL.md §1.4)."""

    @abc.abstractmethod
    def prompt(self, task: Task, history: Sequence[Turn], observation: Observation, step: int) -> str:
        """The user-message content for turn `step` (0-based): task, last `history_length` turns, current
        observation, admissible actions (PROTOCOL.md §1.3). The chat template is applied by the policy."""

    @abc.abstractmethod
    def expert_action(self, env: Env) -> str:
        """The expert's next reply for the episode running in `env`, already in the model's output format
        (`<think>...</think><action>...</action>` or Search's tags)."""

    def random_action(self, env: Env, observation: Observation, rng) -> str:
        """A random valid action in the model's format (the random-valid-action baseline policy and the
        warm start's demonstration noise). Default: a uniformly drawn admissible action."""
        if not observation.admissible:
            raise NotImplementedError(f"{self.name}: no admissible actions listed; override random_action")
        return f"<think>explore</think><action>{rng.choice(list(observation.admissible))}</action>"

    def copied_spans(self, reply: str) -> list[str]:
        """Arguments of `reply` that a policy copies from its prompt rather than recalls (search keywords,
        product ids, option values, entity names): what the warm start's copy augmentation renames
        (`warmstart.rename_share`, sdar/warmstart.py). Default: none (a closed vocabulary, as in ALFWorld)."""
        return []

    def skill_key(self, task: Task) -> str:
        """Routing key for the skill provider (task type / data source / category)."""
        return task.category

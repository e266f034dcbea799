"""ALFWorld suite: panels, tasks, prompts, parser, expert and episodes (DESIGN.md §5-§6, PROTOCOL.md §1.2-§3).

Two sources, one engine (TextWorld PDDL, engine.py):
- real: `$ALFWORLD_DATA/json_2.1.1/<split>` games with `solvable: true`, in sorted path order. The eval panel
  is the whole eval split (valid_seen: the 140 games of the paper's column); `train_pool_size` caps train,
  which never holds an eval game (same split named twice: train is left empty).
- generated (offline default): seeded layouts of generator.py written as `game.tw-pddl` under the cache
  directory on first use, atomically; train and eval draw from disjoint seed streams and an eval game whose
  problem equals a train game's is dropped.

Protocol as verl-agent: reward 10*won, success = won, `max_turns` steps, per-type columns by game path,
invalid format still reaches the engine. Departures: the parser searches `</action>` after the first
`<action>` (upstream takes the first `</action>` anywhere, which can leave an empty slice); the history line
is spelled "observations" (upstream: "observaitons"); the expert is the engine's Fast Downward planner and
knows where objects are (ALFWorld's PLANNER expert), with a short `<think>` for tiny models.

Run: `python benchmarks/env_alfworld.py` plays the expert and a random policy; tests/test_alfworld.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from envs.alfworld.config import AlfworldConfig
from envs.alfworld.engine import (
    TASK_COLUMNS,
    TextWorldGame,
    discover_real_games,
    instruction_of,
    real_data_root,
    task_type_of,
)
from envs.alfworld.generator import GameSpec, game_json, generate_split, problem_text
from envs.base import (
    Env,
    EnvSuite,
    Observation,
    ParsedAction,
    StepResult,
    Task,
    TaskPanel,
    Turn,
    atomic_write_text,
    compact_prompt,
)

GENERATOR_VERSION = 1  # bump when generator.py changes what a (seed, split, index) produces
_CJK = re.compile(r"[\u4e00-\u9fff]")
_HEAD = "You are an expert agent operating in the ALFRED Embodied Environment."
_TAIL = (
    "\nNow it's your turn to take an action.\n"
    "You should first reason step-by-step about the current situation. This reasoning process MUST be enclosed "
    "within <think> </think> tags. \n"
    "Once you've finished your reasoning, you should choose an admissible action for current step and present it "
    "within <action> </action> tags.\n"
)
_REASONS = {"go": "look for what the task needs", "open": "open it to see inside", "take": "pick up the task object",
            "move": "put the object in place", "put": "put the object in place", "heat": "heat the object",
            "cool": "cool the object", "clean": "clean the object", "use": "turn on the light"}  # fmt: skip


class AlfworldEnv(Env):
    """One ALFWorld episode on the suite's engine; `step` never raises."""

    def __init__(self, suite: AlfworldSuite) -> None:
        self.suite = suite
        self.game = TextWorldGame()
        self.task: Task | None = None
        self.observation = Observation("")
        self.steps = 0
        self.done = True
        self.won = False

    def reset(self, task_id: str) -> Observation:
        self.task = self.suite.task(task_id)
        text = self.game.reset(self.suite.game_file(task_id))
        self.steps, self.done, self.won = 0, False, False
        self.observation = Observation(text, self.game.admissible)
        return self.observation

    def step(self, text: str) -> StepResult:
        parsed = self.suite.parse_action(text)
        info = {"action": parsed.action, "task_type": self.task.meta["task_type"] if self.task else None}
        if self.done:  # finished episodes keep being stepped by batched loops: no-op, no reward
            return StepResult(self.observation, 0.0, True, self.won, parsed.valid, info | {"won": self.won})
        try:
            feedback = self.game.step(parsed.action)
        except Exception as err:  # noqa: BLE001 - the contract: no string may crash the episode
            feedback, info["engine_error"] = "Nothing happens.", repr(err)
        self.steps += 1
        self.won = self.game.won
        self.done = self.won or self.steps >= self.suite.max_turns
        self.observation = Observation(feedback, self.game.admissible)
        info |= {
            "won": self.won,
            "steps": self.steps,
            "gamefile": self.task.meta["gamefile"] if self.task else "",
        }
        return StepResult(self.observation, 10.0 * self.won, self.done, self.won, parsed.valid, info)

    def close(self) -> None:
        self.game.close()


class AlfworldSuite(EnvSuite):
    name = "alfworld"
    columns = tuple(TASK_COLUMNS.values())

    def __init__(
        self, cfg: AlfworldConfig | None = None, cache_dir: str | Path = ".cache/envs/alfworld"
    ) -> None:
        self.cfg = cfg or AlfworldConfig()
        self.cache_dir = Path(cache_dir)
        self.max_turns = self.cfg.max_turns
        self.history_length = self.cfg.history_length
        self.invalid_penalty = self.cfg.invalid_penalty
        if self.cfg.source not in ("auto", "real", "generated"):
            raise ValueError(
                f"AlfworldConfig.source={self.cfg.source!r}; valid choices: auto, real, generated"
            )
        root = None
        if self.cfg.source != "generated":
            root = real_data_root(self.cfg.data_path, required=self.cfg.source == "real")
        self.data_root = root
        self.source = "real" if root is not None else "generated"

    # ------------------------------------------------------------------------------------------------------
    # panels and tasks

    @cached_property
    def _games(self) -> dict[str, tuple[list[str], dict]]:
        """split -> (ordered task ids, task id -> Path (real) or GameSpec (generated))."""
        cfg = self.cfg
        if self.source == "real":
            evals = discover_real_games(self.data_root, cfg.eval_split)
            held_out = {tid for tid, _ in evals}
            train = [g for g in discover_real_games(self.data_root, cfg.train_split) if g[0] not in held_out]
            train = train[: cfg.train_pool_size] if cfg.train_pool_size > 0 else train
            return {
                split: ([tid for tid, _ in found], dict(found))
                for split, found in (("train", train), ("eval", evals))
            }
        train = generate_split("train", cfg.gen_train_per_type, cfg.gen_difficulty, cfg.gen_seed)
        evals = generate_split("eval", cfg.gen_eval_per_type, cfg.gen_difficulty, cfg.gen_seed)
        seen = {problem_text(s).split("\n", 1)[1] for s in train}  # the problem minus its name line
        evals = [s for s in evals if problem_text(s).split("\n", 1)[1] not in seen]
        train = train[: cfg.train_pool_size] if cfg.train_pool_size > 0 else train
        evals = evals[: cfg.eval_panel_size] if cfg.eval_panel_size > 0 else evals
        return {split: ([f"{split}/{s.name}" for s in specs], {f"{split}/{s.name}": s for s in specs})
                for split, specs in (("train", train), ("eval", evals))}  # fmt: skip

    @property
    def _root(self) -> Path:
        if self.source == "real":
            return self.cache_dir / "real"
        c = self.cfg
        return (
            self.cache_dir
            / "generated"
            / f"v{GENERATOR_VERSION}-d{c.gen_difficulty}-s{c.gen_seed}-{c.gen_wording}"
        )

    def panel(self, split: str) -> TaskPanel:
        """The fixed ordered panel of 'train' or 'eval', written (with its hash) under the cache directory;
        a different panel already on disk under the same name is an error, never silently replaced."""
        if split not in self._games:
            raise ValueError(f"unknown ALFWorld split {split!r}; valid choices: {', '.join(self._games)}")
        panel = TaskPanel(self.name, split, tuple(self._games[split][0]))
        real = (
            f"-{self.cfg.train_split if split == 'train' else self.cfg.eval_split}"
            if self.source == "real"
            else ""
        )
        path = self._root / f"panel-{split}{real}-{len(panel.task_ids)}.json"
        if path.exists():
            old = TaskPanel.read(path)
            if old.content_hash != panel.content_hash:
                raise ValueError(
                    f"task panel {path} differs from the one built now (data or generator changed)"
                )
        else:
            panel.write(path)
        return panel

    @cached_property
    def _table(self) -> dict[str, Path | GameSpec]:
        return {tid: entry for _, table in self._games.values() for tid, entry in table.items()}

    def _entry(self, task_id: str) -> Path | GameSpec:
        if task_id not in self._table:
            raise KeyError(f"unknown ALFWorld task id {task_id!r} (source={self.source})")
        return self._table[task_id]

    def game_file(self, task_id: str) -> Path:
        """The game.tw-pddl of a task; generated games are written on first use (atomically)."""
        entry = self._entry(task_id)
        if isinstance(entry, Path):
            return entry
        path = self._root / task_id / "game.tw-pddl"
        if not path.exists():
            atomic_write_text(path, json.dumps(game_json(entry, self.cfg.gen_wording)))
        return path

    def task(self, task_id: str) -> Task:
        entry = self._entry(task_id)
        if isinstance(entry, Path):
            task_type, instruction = task_type_of(task_id), instruction_of(json.loads(entry.read_text()))
        else:
            task_type, instruction = entry.task_type, entry.instruction
        meta = {"task_type": task_type, "gamefile": f"{self.source}/{task_id}", "source": self.source}
        return Task(task_id, TASK_COLUMNS[task_type], instruction, meta)

    def make_env(self) -> AlfworldEnv:
        return AlfworldEnv(self)

    # ------------------------------------------------------------------------------------------------------
    # parser, prompt, expert

    @staticmethod
    def parse_action(text: str) -> ParsedAction:
        """PROTOCOL.md §1.4: lowercase; the text between the first <action> and the next </action>; invalid
        (and the last 30 characters are played) without both tags, invalid without <think> and </think> or
        with any CJK character."""
        low = text.lower()
        start = low.find("<action>")
        end = low.find("</action>", start + len("<action>")) if start != -1 else -1
        if end == -1:
            return ParsedAction(low[-30:], False)
        action = low[start + len("<action>") : end].strip()
        valid = "<think>" in low and "</think>" in low and not _CJK.search(text)
        return ParsedAction(action, valid)

    def prompt(self, task: Task, history: Sequence[Turn], observation: Observation, step: int) -> str:
        """verl-agent's ALFWORLD_TEMPLATE (or _NO_HIS at step 0 / without history). `history` holds the turns
        so far, each the observation an action was taken on and that action; the last `history_length` show."""
        recent = list(history)[-self.history_length :] if self.history_length > 0 else []
        if self.cfg.prompt_style == "compact":
            return compact_prompt(task.instruction, recent, observation.text, observation.admissible, step)
        admissible = "\n ".join(f"'{a}'" for a in observation.admissible)
        if step == 0 or not recent:
            return (f"{_HEAD}\nYour current observation is: {observation.text}\n"
                    f"Your admissible actions of the current situation are: [{admissible}].\n{_TAIL}")  # fmt: skip
        first = step - len(recent) + 1
        lines = "\n".join(f"[Observation {first + i}: '{t.observation}', Action {first + i}: '{t.action}']"
                          for i, t in enumerate(recent))  # fmt: skip
        return (f"{_HEAD} Your task is to: {task.instruction}\nPrior to this step, you have already taken {step} "
                f"step(s). Below are the most recent {len(recent)} observations and the corresponding actions you "
                f"took: {lines}\nYou are now at step {step + 1} and your current observation is: {observation.text}\n"
                f"Your admissible actions of the current situation are: [{admissible}].\n{_TAIL}")  # fmt: skip

    def expert_action(self, env: Env) -> str:
        assert isinstance(env, AlfworldEnv), "the ALFWorld expert reads the engine state of an AlfworldEnv"
        command = env.game.expert_command()
        return (
            f"<think>I {_REASONS.get(command.split(' ', 1)[0], 'go on')}.</think><action>{command}</action>"
        )

    def content_hash(self) -> str:
        """Hash of both panels (for run records)."""
        return hashlib.sha256(
            "".join(self.panel(s).content_hash for s in ("train", "eval")).encode()
        ).hexdigest()

"""The TextWorld PDDL engine behind both ALFWorld paths, and discovery of real games.

`TextWorldGame` plays one `game.tw-pddl` file at a time through `textworld.start(...)` with ALFWorld's own
wrappers (`AlfredDemangler(shuffle=False)`, `AlfredInfos`), exactly as `AlfredTWEnv` registers its games. It
adds only what the protocol needs around the engine:
- `help` is dropped from the admissible list (verl-agent does the same);
- the two put-down wordings are mapped onto each other: `move X to Y` (alfworld >= 0.4) is played as
  `put X in/on Y` when only the older form is admissible, and back;
- the expert plan comes from the engine's own Fast Downward planner (`replan` on the current state), cached
  while the agent follows it.

Anything that is not an admissible command reaches the engine unchanged and gets its "Nothing happens.".

Run: `python -m envs.alfworld.engine GAME.tw-pddl` plays the planner's walkthrough and prints it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import threading
from copy import deepcopy
from pathlib import Path

# ALFWorld task type (substring of the game path) -> per-column metric key, in Table 1 order
TASK_COLUMNS = {
    "pick_and_place_simple": "pick",
    "look_at_obj_in_light": "look",
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "pick_two_obj_and_place": "pick2",
}
_TASK_RE = re.compile(r"Your task is to: (.*?)\"", re.S)
_MOVE_RE = re.compile(r"^move (.+) to (.+)$")
_PUT_RE = re.compile(r"^put (.+?) (?:in/on|into|in|on) (.+)$")


class AlfworldDataError(FileNotFoundError):
    """Real ALFWorld data was requested but is not where the config says."""


def task_type_of(path: str) -> str | None:
    """ALFWorld task type named in a game path (the verl-agent rule: substring of `extra.gamefile`)."""
    for task_type in TASK_COLUMNS:
        if task_type in path:
            return task_type
    return None


def instruction_of(game: dict) -> str:
    """The task sentence written into a game's grammar ('put a clean lettuce in diningtable.')."""
    m = _TASK_RE.search(game["grammar"])
    return m.group(1).strip() if m else ""


# ----------------------------------------------------------------------------------------------------------
# real data discovery


def _has_games(root: str) -> bool:
    return (Path(os.path.expanduser(root)) / "json_2.1.1").is_dir()


def _is_package_default(root: str) -> bool:
    return Path(os.path.expanduser(root)).resolve() == (Path.home() / ".cache" / "alfworld").resolve()


def real_data_root(data_path: str | None, required: bool) -> Path | None:
    """The folder holding json_2.1.1/: `data_path`, else $ALFWORLD_DATA. None when neither is set and the
    data is optional; a clear error when it is set (or required) but missing."""
    root = data_path or os.environ.get("ALFWORLD_DATA")
    # `import alfworld` itself exports ALFWORLD_DATA=~/.cache/alfworld (creating an empty folder) when it is unset,
    # so in a process (or its children) that imported alfworld that value is not a user's choice: with optional
    # data and no games there, it means "not configured".
    if not data_path and not required and root and not _has_games(root) and _is_package_default(root):
        root = None
    if not root:
        if not required:
            return None
        raise AlfworldDataError(
            "ALFWorld source='real' needs the game files: set AlfworldConfig.data_path or $ALFWORLD_DATA to the "
            "folder that contains json_2.1.1/ (run `alfworld-download` from the alfworld package, which writes "
            "~/.cache/alfworld, then export ALFWORLD_DATA=~/.cache/alfworld), or use source='generated'."
        )
    path = Path(os.path.expandvars(os.path.expanduser(root)))
    if not (path / "json_2.1.1").is_dir():
        raise AlfworldDataError(
            f"ALFWorld data folder {path} has no json_2.1.1/ directory (expected "
            f"{path}/json_2.1.1/<split>/<task>/<trial>/game.tw-pddl). Run `alfworld-download` (alfworld package) "
            "to fetch it, point ALFWORLD_DATA / AlfworldConfig.data_path at the folder that contains json_2.1.1/, "
            "or use source='generated'."
        )
    return path


def discover_real_games(root: Path, split: str) -> list[tuple[str, Path]]:
    """(task_id, game file) of every playable game of a split, in sorted path order. Playable follows
    ALFWorld's loader: a six-type task, not movable/sliced, a game.tw-pddl with `solvable: true`."""
    split_dir = root / "json_2.1.1" / split
    if not split_dir.is_dir():
        have = sorted(p.name for p in (root / "json_2.1.1").iterdir() if p.is_dir())
        raise AlfworldDataError(
            f"ALFWorld split {split!r} not found under {root}/json_2.1.1 (have: {', '.join(have)})"
        )
    games = []
    for game_file in sorted(split_dir.glob("*/*/game.tw-pddl")):
        rel = game_file.parent.relative_to(root / "json_2.1.1").as_posix()
        if task_type_of(rel) is None or "movable" in rel or "Sliced" in rel:
            continue
        with open(game_file) as f:
            if not json.load(f).get("solvable", False):
                continue
        games.append((rel, game_file))
    return games


# ----------------------------------------------------------------------------------------------------------
# the engine


def map_command(command: str, admissible: tuple[str, ...]) -> str:
    """The admissible spelling of `command` under the other put-down wording, or `command` unchanged."""
    if command in admissible:
        return command
    m = _MOVE_RE.match(command)
    if m:
        alt = f"put {m.group(1)} in/on {m.group(2)}"
        return alt if alt in admissible else command
    m = _PUT_RE.match(command)
    if m:
        alt = f"move {m.group(1)} to {m.group(2)}"
        return alt if alt in admissible else command
    return command


def _memoize(module, name: str, *, copy: bool, maxsize: int | None = None) -> None:
    """Replace `module.name`, a pure function of hashable arguments, by a cached version."""
    fn = getattr(module, name)
    cached = functools.lru_cache(maxsize=maxsize)(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = cached(*args, **kwargs)
        return deepcopy(out) if copy else out

    wrapper.cache_info = cached.cache_info
    setattr(module, name, wrapper)


@functools.cache  # once per process, on the first game
def _speed_up_engine() -> None:
    """Cache the engine's pure parsers; every text, state and plan is unchanged (tests/test_alfworld.py).

    The PDDL engine re-parses the same few hundred grammar snippets with tatsu to render every observation,
    re-parses its logic rules on every applicability query, and translates the game's PDDL to SAS twice per
    `load` and twice more per `reset`; textgen's `copy_context` deep-copies entity infos for every symbol. In a
    generated-ALFWorld GRPO rollout (32 episodes) the engine took 25 of 26.9 s; with these changes the rollout
    takes 3.6 s. Parsed grammar symbols are copied on every hit, since `derive` sets a context on the symbols it
    is handed; the SAS translation's `task` is only read afterwards, so it is shared. Every cache is bounded (the
    translation to the 32 most recent games, ~0.25 MB each). `SDAR_ALFWORLD_RAW_ENGINE=1` leaves textworld as is.
    """
    if os.environ.get("SDAR_ALFWORLD_RAW_ENGINE") == "1":
        return
    import fast_downward
    import textworld.logic
    from textworld.envs.pddl import logic as pddl_logic
    from textworld.envs.pddl import textgen

    _memoize(textgen, "_parse_and_convert", copy=True, maxsize=4096)
    _memoize(pddl_logic, "_parse_and_convert", copy=True, maxsize=64)
    _memoize(textworld.logic, "_parse_and_convert", copy=True, maxsize=4096)
    _memoize(fast_downward, "pddl2sas", copy=False, maxsize=64)
    textgen.copy_context = _copy_context


def _copy_context(context: dict) -> dict:
    """textgen's `copy_context` with one-level copies of the two dicts that derivations extend.

    The original deep-copies `variables` (entity infos) and `mapping` (placeholder -> variable) for every symbol
    it expands; derivations only add keys to them (`query` updates both), never change a value in place.
    """
    return {
        "state": context["state"],
        "facts": context["facts"],
        "variables": dict(context["variables"]),
        "mapping": dict(context["mapping"]),
        "entity_infos": context["entity_infos"],
    }


# textworld's PDDL environment loads a private copy of fast-downward's 33 MB library per instance
# (`fast_downward.load_lib` copies it to a temp dir and never unloads it), so the deleted copy stays mapped until
# the process ends. One instance per episode filled the disk in a 40-step GRPO cell (~1,500 episodes): ENOSPC.
# Closed games park their instance here and the next game takes it, so a process holds only as many instances as
# games it has open at once (a copy each is what keeps concurrent games' planner state apart).
_IDLE: list[tuple[object, str]] = []
_IDLE_LOCK = threading.Lock()


class TextWorldGame:
    """One textworld PDDL environment, reloaded only when the game file changes; reused across games."""

    def __init__(self) -> None:
        self._tw = None
        self._path: str | None = None
        self._plan: list[str] | None = None
        self.admissible: tuple[str, ...] = ()
        self.won = False

    def reset(self, path: str | os.PathLike) -> str:
        """Start `path` from its initial state; returns the intro text."""
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

        _speed_up_engine()
        path = str(path)
        if self._tw is None:
            with _IDLE_LOCK:
                if _IDLE:
                    self._tw, self._path = _IDLE.pop()
        if self._tw is None:
            infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
            self._tw = textworld.start(path, infos, wrappers=[AlfredDemangler(shuffle=False), AlfredInfos])
        elif path != self._path:
            self._tw.load(path)
        self._path = path
        self._plan = None
        return self._absorb(self._tw.reset())

    def step(self, command: str) -> str:
        """Play one command (mapped across wordings when needed); returns the feedback text."""
        command = map_command(command.strip(), self.admissible)
        if self._plan and command == self._plan[0]:
            self._plan.pop(0)
        else:
            self._plan = None  # the agent left the plan: replan on the next expert call
        state, _, _ = self._tw.step(command)
        return self._absorb(state)

    def expert_command(self) -> str:
        """Next command of the planner's walkthrough from the current state ('look' if none is found)."""
        if not self._plan:
            env = self._tw.unwrapped
            self._plan = list(env._pddl_state.replan(env._entity_infos))
        return self._plan[0] if self._plan else "look"

    def close(self) -> None:
        """Park the textworld instance for the next game of this process (see `_IDLE`)."""
        if self._tw is not None:
            with _IDLE_LOCK:
                _IDLE.append((self._tw, self._path))
            self._tw = None

    def _absorb(self, state) -> str:
        self.admissible = tuple(c for c in state["admissible_commands"] if c != "help")
        self.won = bool(state["won"])
        return state.feedback


if __name__ == "__main__":
    game = TextWorldGame()
    print(game.reset(sys.argv[1]))
    while not game.won:
        cmd = game.expert_command()
        print(">", cmd, "\n", game.step(cmd))

"""Configuration of the ALFWorld environment family (DESIGN.md §6, PROTOCOL.md §3).

Defaults live here only (STYLE.md rule 4). `source="auto"` plays real games when a data folder is given
(this config's `data_path` or `$ALFWORLD_DATA`) and generated games otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AlfworldConfig:
    """ALFWorld text environment: real `game.tw-pddl` files or locally generated ones, same engine."""

    source: Literal["auto", "real", "generated"] = "auto"
    """Where games come from: `real` needs the data folder, `generated` ignores it, `auto` picks real when a
    data folder is configured (here or in $ALFWORLD_DATA) and generated otherwise."""
    data_path: str | None = None
    """Folder that contains `json_2.1.1/` (what `alfworld-download` writes); None reads $ALFWORLD_DATA."""
    train_split: str = "train"
    """Real-data split (folder under json_2.1.1/) of the `train` panel."""
    eval_split: str = "valid_seen"
    """Real-data split of the `eval` panel (valid_seen = in-distribution, 140 solvable games)."""
    max_turns: int = 50
    """Episode step limit (ALFWorld's max_nb_steps_per_episode)."""
    history_length: int = 2
    """Past (observation, action) pairs shown in the prompt."""
    prompt_style: Literal["verl_agent", "compact"] = "verl_agent"
    """Prompt template: verl-agent's (official) or `compact` (envs.base.compact_prompt: the same fields without
    the boilerplate, past turns as their actions only; 2-3x fewer tokens, for the CPU mini profile)."""
    invalid_penalty: float = 0.1
    """Penalty coefficient on format-invalid actions (verl-agent invalid_action_penalty_coef)."""
    eval_panel_size: int = 128
    """Tasks in the eval panel: the first N in panel order (0 = the whole split)."""
    train_pool_size: int = 0
    """Cap on the train pool (0 = the whole real split, or every generated train game)."""
    gen_train_per_type: int = 200
    """Generated training games per task type (6 types)."""
    gen_eval_per_type: int = 22
    """Generated eval games per task type; 6 x 22 = 132 >= eval_panel_size."""
    gen_difficulty: int = 1
    """Room difficulty 0-3: more receptacles and distractors, fewer objects where expected, closed
    containers from 1 up (0: 4-6 receptacles, 1: 6-8, 2: 8-10, 3: 10-12)."""
    gen_seed: int = 0
    """Seed of the generated layouts; train and eval draw from disjoint streams of it."""
    gen_wording: Literal["move", "put"] = "move"
    """Put-down command of generated games: `move X to Y` (alfworld 0.4.2 grammar) or `put X in/on Y`
    (the older grammar of the released game files). Both are accepted from the model either way."""

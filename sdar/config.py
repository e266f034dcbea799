"""The suite's configuration tree. Defaults live only here (and in the sections' own dataclasses);
`config/*.yaml` hold overrides; `sdar-bench ... --config FILE --set key=value` override both.

`write_run_files(cfg, run_dir)` writes `config.resolved.yaml` and `run.json` before any work starts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.alfworld import AlfworldConfig
from envs.search_qa import SearchQAConfig
from envs.skills import SkillsConfig
from envs.webshop import WebshopConfig
from sdar import configlib
from sdar.methods import ObjectiveConfig
from sdar.models import ModelsConfig
from sdar.trainer import TrainConfig
from sdar.warmstart import WarmstartConfig

Profile = Literal["smoke", "mini", "paper"]
EnvName = Literal["alfworld", "webshop", "search_qa"]


@dataclass(frozen=True)
class RunConfig:
    """Which cell of the grid a run is."""

    profile: Profile = "mini"
    """Named profile the run belongs to (DESIGN.md §2)."""
    seed: int = 0
    """Seed of everything random in the run (task sampling, sampling, initialisation of heads)."""
    model: str = "tiny-qwen3"
    """Model alias (see `sdar-bench models list`)."""
    method: str = "sdar"
    """Method row of the methods table (see `sdar-bench methods list`)."""
    env: EnvName = "alfworld"
    """Environment."""


@dataclass(frozen=True)
class EnvsConfig:
    """Per-environment settings (data paths, turn limits, panels)."""

    alfworld: AlfworldConfig = field(default_factory=AlfworldConfig)
    """ALFWorld (real games via ALFWORLD_DATA, or generated games)."""
    webshop: WebshopConfig = field(default_factory=WebshopConfig)
    """WebShop (real product files, or a generated catalogue)."""
    search_qa: SearchQAConfig = field(default_factory=SearchQAConfig)
    """Search-QA (question files + corpus or retrieval server, or a generated knowledge base)."""


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (PAPER.md §4)."""

    alfworld_temperature: float = 0.4
    """Sampling temperature of ALFWorld evaluation (`val_kwargs.temperature`)."""
    webshop_temperature: float = 0.4
    """Sampling temperature of WebShop evaluation."""
    search_qa_temperature: float = 0.0
    """Search-QA evaluation is greedy."""
    episodes: int = 128
    """Episodes of the final evaluation (the eval panel's first, dealt round robin over its categories:
    `sdar.evaluate.eval_task_ids`; 0 = the whole panel)."""


@dataclass(frozen=True)
class PathsConfig:
    """Where shared generated artefacts live."""

    env_cache: str = ".cache/envs"
    """Generated environment data and task panels (one folder per environment)."""


@dataclass(frozen=True)
class Config:
    """Root of the configuration tree."""

    run: RunConfig = field(default_factory=RunConfig)
    """The grid cell."""
    models: ModelsConfig = field(default_factory=ModelsConfig)
    """Model zoo settings (tiny model sizes, real model revisions and directories)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation and rollout settings."""
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    """Loss hyperparameters of every method (clip, KL, entropy, SDAR's λ and β, ...)."""
    envs: EnvsConfig = field(default_factory=EnvsConfig)
    """Environment settings."""
    skills: SkillsConfig = field(default_factory=SkillsConfig)
    """Privileged skill retrieval for the teacher (and Skill-GRPO's student)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation protocol."""
    paths: PathsConfig = field(default_factory=PathsConfig)
    """Shared artefact locations."""
    warmstart: WarmstartConfig = field(default_factory=WarmstartConfig)
    """Supervised warm start on noisy expert demonstrations (`sdar-bench warmstart`, the `vanilla` model)."""

    def __post_init__(self):
        from sdar.methods import get_method
        from sdar.models import get_alias

        get_alias(self.run.model)  # unknown alias/method -> ConfigError with the list of choices
        get_method(self.run.method)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` (repeatable) and `--set key=value` (repeatable), shared by every verb."""
    parser.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="YAML overrides, in order"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one key, e.g. run.seed=1"
    )


def from_args(args: argparse.Namespace, extra: dict | None = None) -> Config:
    """Config from `--config` files, explicit CLI flags (`extra`) and `--set` items, in that precedence."""
    return configlib.load(Config, args.config, args.set, extra=extra)


def write_run_files(
    cfg: Config, run_dir: str | Path, model_dir: str | Path | None = None, *, resuming: bool = False
) -> None:
    """config.resolved.yaml + run.json (git SHA and dirty flag, versions, hardware, seed, model revision).

    `resuming`: the run goes on from a checkpoint in `run_dir`, so the run.json already there describes the
    earlier legs of this run (steps that stay in metrics.jsonl). It is kept under the new run.json's `legs`
    (oldest first, each a whole manifest without its own `legs`), so a resumed cell still says which code,
    threads and machine ran its first steps."""
    import json

    from sdar.atomic import atomic_write_json, atomic_write_text
    from sdar.manifest import run_manifest

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = run_manifest(seed=cfg.run.seed, model_alias=cfg.run.model, model_dir=model_dir)
    old_path = run_dir / "run.json"
    if resuming and old_path.is_file():
        try:
            old = json.loads(old_path.read_text())
        except (OSError, ValueError) as e:
            raise configlib.ConfigError(
                f"{old_path}: unreadable run manifest of the run to resume ({e}); "
                "move it aside to resume without the record of the earlier legs"
            ) from e
        if not isinstance(old, dict):
            raise configlib.ConfigError(
                f"{old_path}: a run manifest must be a JSON object, got {type(old).__name__}"
            )
        legs = old.pop("legs", [])
        manifest["legs"] = [*legs, old]
    atomic_write_text(run_dir / "config.resolved.yaml", configlib.dump_yaml(cfg))
    atomic_write_json(old_path, manifest)

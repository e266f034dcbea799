"""The committed stored baselines (results/baselines/<profile>/) still describe their profile: the same grid as
the profile's Snakemake config, clean code, the eval panels the current environments build and the tasks an
evaluation reads from them. A change to a profile's grid, to panel generation or to the tasks an evaluation reads
fails here, not later in `sdar-bench compare` of a new user."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

from envs.base import task_ids_sha256
from envs.registry import make_suite
from sdar import config as config_mod
from sdar import configlib
from sdar.evaluate import eval_task_ids
from sdar.report import baselines

REPO = Path(__file__).resolve().parents[1]
STORED = sorted(p for p in (REPO / "results" / "baselines").iterdir() if p.is_dir())


def snakemake_config(profile: str) -> dict:
    """The Snakemake config file of a profile (config/config.yaml is mini's)."""
    for path in sorted((REPO / "config").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if isinstance(cfg, dict) and cfg.get("profile") == profile and "methods" in cfg:
            return cfg
    raise AssertionError(f"no config/*.yaml declares profile {profile!r}")


def test_the_smoke_baselines_are_stored():
    assert "smoke" in [p.name for p in STORED]


@pytest.mark.parametrize("stored", STORED, ids=[p.name for p in STORED])
def test_stored_baselines_match_their_profile(stored):
    profile = stored.name
    results, manifests = baselines.load(stored)
    cfg = snakemake_config(profile)
    grid = {
        (m, e, a, s) for m in cfg["methods"] for e in cfg["envs"] for a in cfg["models"] for s in cfg["seeds"]
    }
    cells = set(zip(results.method, results.env, results.model, results.seed))
    assert cells == grid
    assert set(results.profile) == {profile}
    assert {(m["method"], m["env"], m["model"], m["seed"]) for m in manifests} == grid
    assert not any(m["run"]["git"]["dirty"] for m in manifests), "stored from uncommitted code"
    assert (stored / "README.md").read_text().startswith(f"# Stored baselines: profile {profile}")
    # the panels the environments build today are the ones the baselines were evaluated on
    for env in cfg["envs"]:
        files = [
            REPO / cfg["sdar_config"],
            *([REPO / cfg["env_config"][env]] if (cfg.get("env_config") or {}).get(env) else []),
        ]
        suite_cfg = configlib.load(config_mod.Config, files, [])
        with tempfile.TemporaryDirectory() as cache:
            suite = make_suite(env, getattr(suite_cfg.envs, env), cache_dir=cache)
            panel, tasks = suite.panel("eval"), eval_task_ids(suite, suite_cfg.eval.episodes)
        assert {m["panel_sha256"] for m in manifests if m["env"] == env} == {panel.content_hash}, env
        # ... and the tasks read from them are the ones an evaluation reads today
        assert {m["tasks_sha256"] for m in manifests if m["env"] == env} == {task_ids_sha256(tasks)}, env

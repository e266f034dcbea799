"""The committed stored baselines (results/baselines/<profile>/) still describe their profile: the same grid as
the profile's Snakemake config, clean code, the eval panels the current environments build and the tasks an
evaluation reads from them. A change to a profile's grid, to panel generation or to the tasks an evaluation reads
fails here, not later in `sdar-bench compare` of a new user. The cells of one environment started from one model,
and a warm start kept with them (warmstarts/<model>/<env>/) is that model and is what the profile's settings
would ask for today, so the workflow can reuse it."""

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
from sdar.models import model_revision
from sdar.report import baselines
from sdar.warmstart import warmstart_settings

REPO = Path(__file__).resolve().parents[1]
STORED = sorted(p for p in (REPO / "results" / "baselines").iterdir() if p.is_dir())


def snakemake_config(name: str, profile: str) -> dict:
    """The Snakemake config of a stored set: config/<name>.yaml merged over config/config.yaml where the set is a
    calibrated variant of its profile (`mini_long`: `--configfile config/mini_long.yaml`), else the config file
    that declares the profile (config/config.yaml is mini's)."""
    variant = REPO / "config" / f"{name}.yaml"
    if name != profile and variant.is_file():
        return configlib.deep_merge(
            yaml.safe_load((REPO / "config" / "config.yaml").read_text()), yaml.safe_load(variant.read_text())
        )
    for path in sorted((REPO / "config").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if isinstance(cfg, dict) and cfg.get("profile") == profile and "methods" in cfg:
            return cfg
    raise AssertionError(f"no config/*.yaml declares profile {profile!r}")


def test_the_smoke_baselines_are_stored():
    assert "smoke" in [p.name for p in STORED]


@pytest.mark.parametrize("stored", STORED, ids=[p.name for p in STORED])
def test_stored_baselines_match_their_profile(stored):
    results, manifests = baselines.load(stored)
    (profile,) = set(results.profile)
    cfg = snakemake_config(stored.name, profile)
    assert cfg["profile"] == profile
    grid = {
        (m, e, a, s) for m in cfg["methods"] for e in cfg["envs"] for a in cfg["models"] for s in cfg["seeds"]
    }
    cells = set(zip(results.method, results.env, results.model, results.seed))
    if stored.name == profile:
        assert cells == grid
    else:  # a calibrated variant's grid (1.5-2.5 h a cell) is stored over several sittings (`store --add`)
        assert cells and cells <= grid
    assert {(m["method"], m["env"], m["model"], m["seed"]) for m in manifests} == cells
    assert not any(m["run"]["git"]["dirty"] for m in manifests), "stored from uncommitted code"
    title = f"# Stored baselines: profile {profile}" + ("" if stored.name == profile else f" ({stored.name})")
    assert (stored / "README.md").read_text().startswith(title + "\n")
    # the panels the environments build today are the ones the baselines were evaluated on (the files a cell
    # of this env reads, in workflows/rules/common.smk `config_files` order)
    for env in sorted(set(results.env)):
        files = [
            REPO / cfg["sdar_config"],
            *([REPO / cfg["env_config"][env]] if (cfg.get("env_config") or {}).get(env) else []),
            *(REPO / f for f in cfg.get("extra_config") or []),
            *(REPO / f for f in (cfg.get("env_extra_config") or {}).get(env, [])),
        ]
        suite_cfg = configlib.load(config_mod.Config, files, [])
        with tempfile.TemporaryDirectory() as cache:
            suite = make_suite(env, getattr(suite_cfg.envs, env), cache_dir=cache)
            panel, tasks = suite.panel("eval"), eval_task_ids(suite, suite_cfg.eval.episodes)
        assert {m["panel_sha256"] for m in manifests if m["env"] == env} == {panel.content_hash}, env
        # ... and the tasks read from them are the ones an evaluation reads today
        assert {m["tasks_sha256"] for m in manifests if m["env"] == env} == {task_ids_sha256(tasks)}, env
        # one starting model per environment; the kept warm start is it, made with today's settings
        for model in sorted(set(results.model)):
            revisions = {
                baselines.starting_model(m)[1] for m in manifests if m["env"] == env and m["model"] == model
            } - {None}
            assert len(revisions) == 1, (env, model, revisions)
            kept = stored / baselines.WARMSTARTS / model / env
            if kept.is_dir():
                assert {model_revision(kept)} == revisions, (env, model)
                asked = configlib.load(
                    config_mod.Config,
                    files,
                    [f"warmstart.envs=[{env}]"],
                    extra={"run": {"model": model, "profile": profile}},
                )
                have = configlib.read_yaml(kept / "config.resolved.yaml")
                assert warmstart_settings(configlib.to_dict(asked)) == warmstart_settings(have), (env, model)

"""Training and evaluation end to end on a tiny model (smoke profile): every method row, resume, determinism.

The model is built in code from an env-text corpus (no downloads). These are plumbing tests: nothing is
expected to learn in two steps, but parameters must change and every artefact must be complete.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdar import configlib, models
from sdar.methods import METHODS

ENV_CACHE = "paths.env_cache={cache}"


@pytest.fixture(scope="session")
def cell(tmp_path_factory):
    """A tiny model and an env cache shared by the tests of this file."""
    root = tmp_path_factory.mktemp("cell")
    cache = root / "envs"
    corpus = root / "corpus.txt"
    res = subprocess.run([sys.executable, "-m", "sdar.cli", "envs", "corpus", "--out", str(corpus), "--episodes", "10",
                          "--cache", str(cache)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr
    cfg = configlib.build(
        models.ModelsConfig, {"tiny_qwen3": {"num_layers": 1, "hidden_size": 64, "intermediate_size": 128}}
    )
    models.build("tiny-qwen3", root / "model", cfg, corpus=corpus.read_text().splitlines())
    return root, cache


def cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "sdar.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def train_args(cell, out, method="sdar", env="webshop", seed=0, *extra):
    root, cache = cell
    return ["train", "--method", method, "--env", env, "--model", "tiny-qwen3", "--seed", str(seed), "--out", str(out),
            "--model-dir", str(root / "model"), "--profile", "smoke", "--set", ENV_CACHE.format(cache=cache), *extra]  # fmt: skip


TRAINED = [m for m, row in METHODS.items() if row.trains]


@pytest.mark.parametrize("method", TRAINED)
def test_every_training_row_trains_and_evaluates(cell, tmp_path, method):
    from safetensors.torch import load_file

    out = tmp_path / method
    res = cli(*train_args(cell, out, method, "webshop", 0, "--set", "train.steps=1"))
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("config.resolved.yaml", "run.json", "metrics.jsonl", "checkpoint/model/config.json"):
        assert (out / name).is_file(), name
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 0 and "rollout/success_rate" in lines[0] and "loss/pg" in lines[0]
    assert 0.0 <= lines[0]["rollout/mixed_group_ratio"] <= 1.0
    assert lines[0]["optimizer_steps"] >= 1 and lines[0]["grad_norm"] > 0
    if METHODS[method].needs_teacher:
        assert "sdar/teacher_old_gap_mean" in lines[0]
    before = load_file(str(cell[0] / "model" / "model.safetensors"))
    after = load_file(str(out / "checkpoint" / "model" / "model.safetensors"))
    assert any((before[k] - after[k]).abs().max() > 0 for k in before), "no parameter changed"
    res = cli("evaluate", "--run", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    ev = json.loads((out / "eval.json").read_text())
    assert ev["method"] == method and ev["panel_size"] == 4 and 0.0 <= ev["success_rate"] <= 1.0


def test_fresh_tasks_keep_rl_off_the_warm_starts_tasks(cell):
    from collections import Counter

    from envs.registry import make_suite
    from sdar.config import Config
    from sdar.trainer import rl_task_ids
    from sdar.warmstart import demo_task_ids

    suite = make_suite("search_qa", cache_dir=cell[1])
    ids, cat = list(suite.panel("train").task_ids), lambda t: suite.task(t).category
    ws = {"episodes": 1050, "task_order": "by_category"}
    assert rl_task_ids(suite, configlib.build(Config, {"warmstart": ws})) == ids
    fresh = rl_task_ids(suite, configlib.build(Config, {"warmstart": ws, "train": {"fresh_tasks": True}}))
    shown = demo_task_ids(ids, cat, 1050, "by_category")
    assert len(fresh) == len(ids) - 1050 and not set(fresh) & set(shown)
    assert Counter(map(cat, fresh)) == {s: 50 for s in suite.columns}  # 200 per source, 150 of each shown
    too_many = {"warmstart": {"episodes": len(ids)}, "train": {"fresh_tasks": True}}
    with pytest.raises(ValueError, match="cover all"):
        rl_task_ids(suite, configlib.build(Config, too_many))


def test_mixed_group_ratio_counts_groups_whose_rewards_differ():
    from sdar.rollout import EpisodeResult, mixed_group_ratio

    def ep(uid, reward):
        return EpisodeResult("t", "pick", uid, reward > 0, reward, float(reward > 0), 3, 3)

    # groups a: 10 / 0 (mixed), b: 0 / 0, c: 10 / 10; then d: 0 / 10 (mixed)
    eps = [ep("a", 10.0), ep("a", 0.0), ep("b", 0.0), ep("b", 0.0), ep("c", 10.0), ep("c", 10.0)]
    assert mixed_group_ratio(eps) == 1 / 3
    assert mixed_group_ratio(eps + [ep("d", 0.0), ep("d", 10.0)]) == 2 / 4
    assert mixed_group_ratio([]) == 0.0


@pytest.mark.parametrize("env", ["alfworld", "search_qa"])
def test_other_environments_train(cell, tmp_path, env):
    out = tmp_path / env
    res = cli(*train_args(cell, out, "sdar", env, 0, "--set", "train.steps=1", "--set", "eval.episodes=2"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "checkpoint" / "model" / "config.json").is_file()


@pytest.mark.parametrize("method", [m for m, row in METHODS.items() if not row.trains])
def test_evaluation_only_rows(cell, tmp_path, method):
    root, cache = cell
    res = cli("evaluate", "--method", method, "--env", "webshop", "--model", "tiny-qwen3", "--seed", "0",
              "--model-dir", str(root / "model"), "--out", str(tmp_path), "--profile", "smoke",
              "--set", ENV_CACHE.format(cache=cache))  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["skills_in_prompt"] == METHODS[method].eval_skills


def test_same_seed_gives_identical_files_and_sigkill_resume_matches(cell, tmp_path):
    full_a, full_b, killed = tmp_path / "a", tmp_path / "b", tmp_path / "k"
    extra = ("--set", "train.steps=3")
    for out in (full_a, full_b):
        res = cli(*train_args(cell, out, "grpo", "webshop", 1, *extra))
        assert res.returncode == 0, res.stderr[-3000:]
    assert (full_a / "metrics.jsonl").read_text() == (full_b / "metrics.jsonl").read_text()
    # kill the third run with SIGKILL once its first checkpoint exists, then resume it
    proc = subprocess.Popen([sys.executable, "-m", "sdar.cli", *train_args(cell, killed, "grpo", "webshop", 1, *extra)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 600
    while (
        not (killed / "checkpoint" / "state.pt").exists() and proc.poll() is None and time.time() < deadline
    ):
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    res = cli(*train_args(cell, killed, "grpo", "webshop", 1, *extra))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (killed / "metrics.jsonl").read_text() == (full_a / "metrics.jsonl").read_text()
    for out in (full_a, killed):
        assert cli("evaluate", "--run", str(out)).returncode == 0
    assert (killed / "eval.json").read_text() == (full_a / "eval.json").read_text()
    # run.json keeps the killed leg's manifest: a resumed cell still says what ran its first steps
    first, resumed = (json.loads((out / "run.json").read_text()) for out in (full_a, killed))
    assert "legs" not in first and [leg["seed"] for leg in resumed["legs"]] == [1]
    assert "legs" not in resumed["legs"][0] and resumed["legs"][0]["created"] <= resumed["created"]
    # a finished 2-step run extended to 3 steps: the same file as the 3-step run (its final eval line goes)
    short = tmp_path / "s"
    for steps in (2, 3):
        res = cli(*train_args(cell, short, "grpo", "webshop", 1, "--set", f"train.steps={steps}"))
        assert res.returncode == 0, res.stderr[-3000:]
        if steps == 2:
            assert json.loads((short / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert (short / "metrics.jsonl").read_text() == (full_a / "metrics.jsonl").read_text()
    manifest = (short / "run.json").read_text()
    assert len(json.loads(manifest)["legs"]) == 1  # the 2-step run; the extension is the manifest itself
    # called again, the finished run redoes nothing and keeps its files (its final eval line, its run.json)
    res = cli(*train_args(cell, short, "grpo", "webshop", 1, "--set", "train.steps=3"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "at step 3, 3 asked): nothing to train" in res.stderr and "resumed from" not in res.stderr
    assert (short / "metrics.jsonl").read_text() == (full_a / "metrics.jsonl").read_text()
    assert (short / "run.json").read_text() == manifest  # no leg for a call that trained nothing


def test_truncate_jsonl_drops_every_line_a_resume_rewrites(tmp_path):
    from sdar.trainer import truncate_jsonl

    def write(*rows):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def steps():
        return [
            (r["step"], "rollout/success_rate" in r) for r in map(json.loads, path.read_text().splitlines())
        ]

    path = tmp_path / "metrics.jsonl"
    row = lambda k: {"step": k, "rollout/success_rate": 0.5}  # noqa: E731
    # a 2-step run finished (checkpoint at step 2 saw 3 lines: two steps and the final eval), then extended to
    # 4 steps and killed at step 3 before its next checkpoint: the resume from step 2 keeps steps 0 and 1 only
    write(row(0), row(1), {"step": 2, "eval/success_rate": 0.2}, row(2), row(3))
    truncate_jsonl(path, 3, 2)
    assert steps() == [(0, True), (1, True)]
    # killed once more the same way: the checkpoint still says 3 lines, line 3 is now step 2's full record
    write(row(0), row(1), row(2), row(3))
    truncate_jsonl(path, 3, 2)
    assert steps() == [(0, True), (1, True)]
    # a mid-run kill: the checkpoint at step 2 saw 2 lines; the record of step 2 written after it goes
    write(row(0), row(1), row(2))
    truncate_jsonl(path, 2, 2)
    assert steps() == [(0, True), (1, True)]
    # a finished 2-step run called again with 2 steps after an extension was killed: back to what it saw
    write(row(0), row(1), {"step": 2, "eval/success_rate": 0.2}, row(2), row(3))
    truncate_jsonl(path, 3, None)
    assert steps() == [(0, True), (1, True), (2, False)]


def test_bad_cells_fail_before_any_work(cell, tmp_path):
    res = cli(*train_args(cell, tmp_path / "x", "nope"))
    assert (
        res.returncode == 2 and "unknown method 'nope'" in res.stderr.lower() or "valid choices" in res.stderr
    )
    assert not (tmp_path / "x").exists()
    res = cli(*train_args(cell, tmp_path / "y", "sdar", "minecraft"))
    assert res.returncode == 2 and "valid choices: 'alfworld', 'webshop', 'search_qa'" in res.stderr
    res = cli(*train_args(cell, tmp_path / "z", "vanilla"))
    assert res.returncode != 0 and "evaluation-only" in res.stderr
    res = cli(*train_args(cell, tmp_path / "w", "sdar", "webshop", 0, "--profile", "huge"))
    assert res.returncode == 2 and "unknown profile 'huge'" in res.stderr


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(cell, tmp_path):
    out = tmp_path / "nan"
    assert cli(*train_args(cell, out, "grpo", "webshop", 0, "--set", "train.steps=1")).returncode == 0
    ckpt = (out / "checkpoint" / "state.pt").read_bytes()
    # a NaN loss weight injects NaN into the loss of the resumed step 2
    res = cli(
        *train_args(
            cell, out, "grpo", "webshop", 0, "--set", "train.steps=3", "--set", "objective.entropy_coef=.nan"
        )
    )
    assert (
        res.returncode != 0 and "non-finite" in res.stderr and "Traceback" not in res.stderr.splitlines()[-1]
    )
    assert (out / "checkpoint" / "state.pt").read_bytes() == ckpt
    assert Path(out / "checkpoint" / "model" / "config.json").is_file()


def test_envs_cli_list_and_play(cell):
    _, cache = cell
    res = cli("envs", "list", "--cache", str(cache))
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r["env"]: r for r in json.loads(res.stdout)}
    assert rows["alfworld"]["columns"] == ["pick", "look", "clean", "heat", "cool", "pick2"]
    assert rows["search_qa"]["max_turns"] == 4 and rows["webshop"]["max_turns"] == 15
    for env in ("webshop", "search_qa"):
        expert = json.loads(
            cli("envs", "play", "--env", env, "--episodes", "8", "--cache", str(cache)).stdout
        )
        rand = json.loads(
            cli(
                "envs", "play", "--env", env, "--policy", "random", "--episodes", "8", "--cache", str(cache)
            ).stdout
        )
        assert expert["success_rate"] == 1.0 and rand["success_rate"] < 0.5 and expert["env_steps_per_s"] > 0
        assert expert["panel_sha256"] == rand["panel_sha256"] and set(expert["per_column"]) >= set(
            rows[env]["columns"]
        )
        # 8 tasks dealt round robin over the panel's categories: every WebShop category and Search-QA source
        # is played (the panels list them in blocks, so the first 8 tasks would cover one or two)
        assert all(expert["per_column"][c] is not None for c in rows[env]["columns"]), expert["per_column"]
        assert expert["tasks_sha256"] == rand["tasks_sha256"]
    res = cli("envs", "play", "--env", "minecraft", "--cache", str(cache))
    assert res.returncode == 2 and "valid choices: alfworld, webshop, search_qa" in res.stderr


def test_two_processes_train_one_cell_with_accelerate(cell, tmp_path):
    """torchrun + accelerate on CPU (gloo): each process rolls out its share of the tasks, gradients are
    all-reduced, the main process writes one metrics line per step with the episodes of both."""
    out = tmp_path / "ddp"
    args = train_args(cell, out, "sdar", "webshop", 0, "--set", "train.steps=2", "--set", "train.tasks_per_step=2",
                      "--set", "train.device=cpu", "--set", "train.threads=1")  # fmt: skip
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "sdar.cli", *args],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("2 process(es)") == 2
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [0, 1, 2]
    assert all(x["rollout/episodes"] == 2 * 2 for x in lines[:2])  # 2 tasks x group 2 (smoke), both processes
    assert all(x["optimizer_steps"] >= 1 and x["grad_norm"] > 0 for x in lines[:2])
    assert (out / "checkpoint" / "model" / "model.safetensors").is_file()

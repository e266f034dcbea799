"""ALFWorld suite: parser, panels, determinism, never-raising step, expert on generated and real games.

Fast tests use a few games; `-m slow` ones play the whole generated eval panel and 30 real valid_seen games
(5 per type) with a random-admissible-action policy beside. Real games come from ../shared/data/alfworld
(relative to the repo) through ALFWORLD_DATA, exactly as a user's download would be read.

Run: `pytest tests/test_alfworld.py` (fast) or `pytest tests/test_alfworld.py -m slow -s` (prints rates).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.alfworld import AlfworldConfig, AlfworldSuite
from envs.alfworld.engine import AlfworldDataError, map_command
from envs.base import TaskPanel, Turn

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alfworld"
needs_real = pytest.mark.skipif(
    not (REAL_DATA / "json_2.1.1").is_dir(), reason=f"no real ALFWorld sample at {REAL_DATA}"
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> AlfworldSuite:
    return AlfworldSuite(AlfworldConfig(source="generated"), tmp_path_factory.mktemp("alfworld"))


@pytest.fixture(scope="module")
def real_suite(tmp_path_factory) -> AlfworldSuite:
    mp = pytest.MonkeyPatch()
    mp.setenv("ALFWORLD_DATA", str(REAL_DATA))
    yield AlfworldSuite(AlfworldConfig(train_split="valid_train"), tmp_path_factory.mktemp("alfworld-real"))
    mp.undo()


def play(suite: AlfworldSuite, task_ids, policy) -> float:
    """Success rate of `policy(env, obs) -> reply` over `task_ids` (one env reused, as a worker would)."""
    env, wins = suite.make_env(), 0
    for tid in task_ids:
        obs = env.reset(tid)
        while not env.done:
            obs = env.step(policy(env, obs)).observation
        wins += env.won
    env.close()
    return wins / len(task_ids)


def per_type(suite: AlfworldSuite, task_ids, n: int) -> list[str]:
    out = {c: [] for c in suite.columns}
    for tid in task_ids:
        bucket = out[suite.task(tid).category]
        bucket.extend([tid] if len(bucket) < n else [])
    return [tid for c in suite.columns for tid in out[c]]


def random_policy(seed: int = 0):
    rng = random.Random(seed)
    return lambda env, obs: f"<think>try</think><action>{rng.choice(obs.admissible)}</action>"


# ----------------------------------------------------------------------------------------------------------
# parser (PROTOCOL.md §1.4)


@pytest.mark.parametrize(
    "text, action, valid",
    [
        ("<think>go</think><action>Go To Fridge 1</action>", "go to fridge 1", True),
        (
            "<think>x</think> <action> take apple 1 from fridge 1 </action> trailing",
            "take apple 1 from fridge 1",
            True,
        ),
        ("<action>look</action>", "look", False),  # no think
        ("<think>a</think>go to fridge 1", "<think>a</think>go to fridge 1"[-30:], False),  # no action tags
        ("<think>a</think><action>look", "<think>a</think><action>look"[-30:], False),  # unclosed tag
        ("<think>苹果</think><action>look</action>", "look", False),  # CJK
        ("<think>a</think><action>open a</action><action>open b</action>", "open a", True),  # first block
        (
            "</action><think>a</think><action>look</action>",
            "look",
            True,
        ),  # closing tag searched after opening
        ("", "", False),
    ],
)
def test_parse_action_cases(text, action, valid):
    parsed = AlfworldSuite.parse_action(text)
    assert (parsed.action, parsed.valid) == (action, valid)


@settings(max_examples=10_000, deadline=None)
@given(st.text())
def test_parse_action_total(text):
    parsed = AlfworldSuite.parse_action(text)
    assert (
        isinstance(parsed.action, str)
        and parsed.action == parsed.action.lower()
        or not parsed.action.isascii()
    )
    assert parsed.valid in (True, False)


def test_map_command_both_wordings():
    old = ("put apple 1 in/on fridge 1", "look")
    new = ("move apple 1 to fridge 1", "look")
    assert map_command("move apple 1 to fridge 1", old) == "put apple 1 in/on fridge 1"
    assert map_command("put apple 1 in/on fridge 1", new) == "move apple 1 to fridge 1"
    assert map_command("put apple 1 in fridge 1", new) == "move apple 1 to fridge 1"
    assert map_command("move apple 1 to sofa 1", old) == "move apple 1 to sofa 1"  # not admissible: unchanged


# ----------------------------------------------------------------------------------------------------------
# panels, tasks, determinism


def test_panels_fixed_hashed_disjoint(suite, tmp_path):
    train, evals = suite.panel("train"), suite.panel("eval")
    assert len(evals.task_ids) == 128 and len(train.task_ids) == 1200
    assert not set(train.task_ids) & set(evals.task_ids)
    assert [suite.task(t).category for t in evals.task_ids[:6]] == list(suite.columns)
    written = sorted(suite._root.glob("panel-eval-*.json"))
    assert TaskPanel.read(written[0]).content_hash == evals.content_hash
    again = AlfworldSuite(
        AlfworldConfig(source="generated"), tmp_path
    )  # a second instance: same panel, same games
    assert again.panel("eval") == evals
    tid = evals.task_ids[3]
    assert again.game_file(tid).read_bytes() == suite.game_file(tid).read_bytes()
    game = json.loads(suite.game_file(tid).read_text())
    assert set(game) == {"pddl_domain", "grammar", "pddl_problem", "solvable"} and game["solvable"]
    task = suite.task(tid)
    assert task.category == "heat" and task.instruction in game["grammar"]
    with pytest.raises(ValueError, match="valid choices"):
        suite.panel("test")


def test_group_shares_initial_state_and_prompt(suite):
    tid = suite.panel("eval").task_ids[1]
    a, b = suite.make_env(), suite.make_env()
    oa, ob = a.reset(tid), b.reset(tid)
    assert oa == ob and "help" not in oa.admissible and "Your task is to: " in oa.text
    task = suite.task(tid)
    p0 = suite.prompt(task, [], oa, 0)
    assert p0.startswith(
        "You are an expert agent operating in the ALFRED Embodied Environment.\nYour current obs"
    )
    r = a.step("<think>x</think><action>inventory</action>")
    hist = [Turn(oa.text, "inventory"), Turn(r.observation.text, "look")]
    p2 = suite.prompt(task, hist, r.observation, 2)
    assert f"Your task is to: {task.instruction}" in p2 and "[Observation 2: " in p2 and "step 3" in p2
    assert "'look'" in p2.split("admissible actions")[1]
    bad = a.step("no tags here")
    assert not bad.valid_action and bad.observation.text == "Nothing happens." and bad.reward == 0.0


def test_closed_games_reuse_textworld_instances(suite):
    """Each textworld instance maps its own 33 MB planner library until the process ends: an env per episode
    must reuse closed games' instances (a long cell otherwise fills the disk), and open games never share one."""
    ids = per_type(suite, suite.panel("eval").task_ids, 1)
    a, b = suite.make_env(), suite.make_env()
    a.reset(ids[0]), b.reset(ids[1])
    assert a.game._tw is not b.game._tw
    ours = {id(a.game._tw), id(b.game._tw)}
    a.close(), b.close()
    # a fresh env per episode, as rollouts make them; the expert still wins on a reused instance
    for tid in ids:
        env = suite.make_env()
        env.reset(tid)
        assert id(env.game._tw) in ours
        while not env.done:
            env.step(suite.expert_action(env))
        assert env.won, tid
        env.close()


_TRACE = """
import json, random, sys
from pathlib import Path
from envs.alfworld import AlfworldConfig, AlfworldSuite
suite = AlfworldSuite(AlfworldConfig(source="generated"), Path(sys.argv[1]))
ids = json.loads(sys.argv[2])
rng, env, out = random.Random(0), suite.make_env(), []
for tid in ids + ids[::-1]:  # every game twice: loads, resets and cache hits
    obs = env.reset(tid)
    trace = [obs.text, obs.admissible]
    while not env.done:
        roll = rng.random()
        act = "jump around" if roll < 0.05 else env.game.expert_command() if roll < 0.85 else rng.choice(obs.admissible)
        res = env.step(f"<think>t</think><action>{act}</action>")
        obs = res.observation
        trace += [act, obs.text, obs.admissible, res.reward, res.valid_action]
    out.append([tid, env.won, trace])
print(json.dumps(out))
"""


def test_engine_caches_change_nothing(suite, tmp_path):
    """The engine's parser/translation caches (`engine._speed_up_engine`) leave every observation, admissible
    list, reward and expert plan as raw textworld gives them: the same seeded mixed policy (expert, random
    admissible, invalid) over one game per type, each played twice, in a raw and a cached process."""
    import os
    import subprocess
    import sys

    ids = per_type(suite, suite.panel("eval").task_ids, 1)
    script = tmp_path / "trace.py"
    script.write_text(_TRACE)
    runs = []
    for raw in ("1", "0"):
        env = {**os.environ, "SDAR_ALFWORLD_RAW_ENGINE": raw, "PYTHONPATH": str(Path(__file__).parents[1])}
        cmd = [sys.executable, str(script), str(suite.cache_dir), json.dumps(ids)]
        runs.append(
            json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
        )
    assert len(runs[0]) == 2 * len(ids) and any(won for _, won, _ in runs[0])
    assert runs[0] == runs[1]


def test_missing_real_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    with pytest.raises(AlfworldDataError, match="alfworld-download"):
        AlfworldSuite(AlfworldConfig(source="real"), tmp_path)
    with pytest.raises(AlfworldDataError, match="json_2.1.1"):
        AlfworldSuite(AlfworldConfig(data_path=str(tmp_path)), tmp_path)
    assert AlfworldSuite(AlfworldConfig(), tmp_path).source == "generated"


# the bar: >= 10,000 arbitrary strings through `step` too (engine calls cost ~20 ms each: ~3 min)
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(), st.text().map(lambda s: f"<think>t</think><action>{s}</action>")))
def test_step_never_raises(suite, text):
    env = _fuzz_env(suite)
    result = env.step(text)
    assert isinstance(result.observation.text, str) and result.reward in (0.0, 10.0)
    if env.done:
        env.reset(suite.panel("eval").task_ids[0])


_ENVS: dict[int, object] = {}


def _fuzz_env(suite):
    if id(suite) not in _ENVS:
        _ENVS[id(suite)] = suite.make_env()
        _ENVS[id(suite)].reset(suite.panel("eval").task_ids[0])
    return _ENVS[id(suite)]


# ----------------------------------------------------------------------------------------------------------
# expert and random policy


def expert(suite):
    return lambda env, obs: suite.expert_action(env)


def test_expert_generated_fast(suite):
    ids = per_type(suite, suite.panel("eval").task_ids, 2)
    assert play(suite, ids, expert(suite)) >= 0.95


@needs_real
def test_expert_real_fast(real_suite):
    assert real_suite.source == "real" and len(real_suite.panel("eval").task_ids) == 140
    ids = per_type(real_suite, real_suite.panel("eval").task_ids, 1)
    assert play(real_suite, ids, expert(real_suite)) >= 0.95


@pytest.mark.slow
def test_expert_generated_panel(suite):
    ids = suite.panel("eval").task_ids
    rate, rnd = play(suite, ids, expert(suite)), play(suite, ids[:36], random_policy())
    print(f"\ngenerated eval panel: expert {rate:.3f} on {len(ids)}, random-admissible {rnd:.3f} on 36")
    assert rate >= 0.95


@pytest.mark.slow
@needs_real
def test_expert_real_30(real_suite):
    ids = per_type(real_suite, real_suite.panel("eval").task_ids, 5)
    assert len(ids) == 30
    rate, rnd = play(real_suite, ids, expert(real_suite)), play(real_suite, ids[::2], random_policy())
    print(f"\nreal valid_seen: expert {rate:.3f} on 30, random-admissible {rnd:.3f} on 15")
    assert rate >= 0.95

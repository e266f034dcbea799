"""WebShop environment: parser, pages, rewards, panels, prompt, expert and the data loaders."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envs.base import Observation, TaskPanel, Turn
from envs.registry import make_suite
from envs.webshop import WebshopConfig, WebshopSuite
from envs.webshop.catalogue import SKILL_CATEGORIES, load_fixed_goals, skill_category

SMALL = WebshopConfig(num_products=140, eval_panel_size=20, train_offset=40)


def act(a: str) -> str:
    return f"<think>ok</think><action>{a}</action>"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return WebshopSuite(SMALL, tmp_path_factory.mktemp("ws"))


@pytest.fixture()
def env_at_item(suite):
    """An env on the eval panel's first goal, on the target's item page."""
    env = suite.make_env()
    tid = suite.panel("eval").task_ids[0]
    env.reset(tid)
    env.step(act(f"search[{suite.goals[tid].name}]"))
    env.step(act(f"click[{env.goal.asin.lower()}]"))
    assert env.state.page == "item"
    return env


# ---------------------------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    "text, action, valid",
    [
        ("<think>x</think><action>Click[Buy Now]</action>", "click[buy now]", True),
        ("<think>x</think> <ACTION> search[red shoes] </ACTION>", "search[red shoes]", True),
        ("<think>x</think><action>a</action><action>b</action>", "a", True),  # the first block
        ("<think>x</think></action>oops<action>", "", True),  # end before start: empty slice, as upstream
        ("<action>click[buy now]</action>", "click[buy now]", False),  # no think
        ("<think>x<action>click[buy now]</action>", "click[buy now]", False),  # no </think>
        ("<THINK>x</THINK><action>a</action>", "a", False),  # think tags are checked case-sensitively
        ("<think>买</think><action>click[buy now]</action>", "click[buy now]", False),  # CJK
        ("I would click the Buy Now button please", "e buy now button please"[-20:], False),  # last 20 chars
        ("", "", False),
    ],
)
def test_parse_action(text, action, valid):
    parsed = WebshopSuite.parse_action(text)
    assert (parsed.action, parsed.valid) == (action, valid)


# ---------------------------------------------------------------------------------------------- pages


def test_search_page_and_invalid_actions_are_noops(suite):
    env = suite.make_env()
    obs = env.reset(suite.panel("eval").task_ids[0])
    assert obs == Observation("'Search'", ("search[<your query>]", "click[search]"))
    assert env.available_actions() == {"has_search_bar": True, "clickables": ["search"]}
    for bad in ["click[search]", "search[]", "click[buy now]", "jump", "search [  ]"]:
        r = env.step(act(bad))
        assert (r.reward, r.done, r.info["action_effective"], r.observation) == (0.0, False, False, obs)


def test_results_paging_and_back(suite):
    env = suite.make_env()
    env.reset(suite.panel("eval").task_ids[0])
    r = env.step(act("search[for]"))  # a word of every title: 50 results
    assert r.info["action_effective"]
    assert "'Page 1 (Total results: 50)' [SEP] 'Next >'" in r.observation.text
    assert r.observation.admissible[:2] == ("click[back to search]", "click[next >]")
    assert len(r.observation.admissible) == 12  # back, next, 10 products
    assert not env.step(act("search[hoodie]")).info["action_effective"]  # no search bar here
    r = env.step(act("click[next >]"))
    assert "'Page 2 (Total results: 50)' [SEP] '< Prev' [SEP] 'Next >'" in r.observation.text
    for _ in range(3):
        r = env.step(act("click[next >]"))
    assert "Page 5" in r.observation.text and "click[next >]" not in r.observation.admissible
    r = env.step(act("click[back to search]"))
    assert r.observation.text == "'Search'"


def test_item_page_options_subpages_and_prev(suite, env_at_item):
    env = env_at_item
    prod = suite.products[env.goal.asin]
    text = env.observation.text
    assert text.startswith("'Back to Search' [SEP] '< Prev'") and text.endswith("'Reviews' [SEP] 'Buy Now'")
    assert f"'{prod.title}' [SEP] 'Price: {prod.price_tag}'" in text
    name, values = next(iter(prod.options.items()))
    env.step(act(f"click[{values[-1]}]"))
    assert env.state.options == {name: values[-1]}
    r = env.step(act("click[features]"))
    assert r.observation.text == " [SEP] ".join(f"'{x}'" for x in ["Back to Search", "< Prev", *prod.bullets])
    assert r.observation.admissible == ("click[back to search]", "click[< prev]")
    env.step(act("click[< prev]"))
    assert env.state.page == "item" and env.state.options == {name: values[-1]}  # options kept
    env.step(act("click[< prev]"))
    assert env.state.page == "results" and env.state.options == {}


def test_buying_the_goal_scores_one_and_rewards_ten(suite, env_at_item):
    env = env_at_item
    for _, value in env.goal.options:
        env.step(act(f"click[{value}]"))
    r = env.step(act("click[buy now]"))
    assert (r.done, r.success, r.reward, r.info["task_score"]) == (True, True, 10.0, 1.0)
    assert r.info["score_parts"]["r_type"] == 1.0 and r.info["type_tagger"] == suite.tagger.name
    assert r.observation.text.startswith("Thank you for shopping with us!")
    r2 = env.step("anything")  # after the end: a no-op with reward 0
    assert (r2.done, r2.reward, r2.info["task_score"]) == (True, 0.0, 1.0)


def test_buying_without_options_gets_partial_score(suite, env_at_item):
    env = env_at_item
    g = env.goal
    r = env.step(act("click[buy now]"))
    assert (r.done, r.success, r.reward) == (True, False, 0.0)
    assert r.info["task_score"] == pytest.approx(
        (len(g.attributes) + 1) / (len(g.attributes) + len(g.options) + 1)
    )


def test_score_reward_pays_the_purchase_score(tmp_path):
    """`reward: score`: 10 x the score of any purchase (partial or whole), 0 for a truncated episode; success
    and task_score as under the default `success` reward."""
    dense = WebshopSuite(dataclasses.replace(SMALL, reward="score"), tmp_path)
    tid = dense.panel("eval").task_ids[0]
    env = dense.make_env()

    def buy(options):
        env.reset(tid)
        env.step(act(f"search[{dense.goals[tid].name}]"))
        env.step(act(f"click[{env.goal.asin.lower()}]"))
        for _, value in options:
            env.step(act(f"click[{value}]"))
        return env.step(act("click[buy now]"))

    g = dense.goals[tid]
    assert g.options, "the test needs a goal with options"
    r = buy([])  # no option chosen: a partial score
    partial = (len(g.attributes) + 1) / (len(g.attributes) + len(g.options) + 1)
    assert (r.done, r.success, r.info["task_score"]) == (True, False, pytest.approx(partial))
    assert r.reward == pytest.approx(10.0 * partial) and 0.0 < r.reward < 10.0
    assert env.step(act("click[buy now]")).reward == 0.0  # after the end: nothing more
    r = buy(g.options)
    assert (r.success, r.info["task_score"], r.reward) == (True, 1.0, 10.0)
    env.reset(tid)
    rewards = [env.step(act("click[back to search]")).reward for _ in range(dense.max_turns)]
    assert env.done and rewards == [0.0] * dense.max_turns  # truncated: no purchase, no reward


def test_episode_is_truncated_after_max_turns(suite):
    env = suite.make_env()
    env.reset(suite.panel("eval").task_ids[0])
    results = [env.step("no tags at all") for _ in range(suite.max_turns)]
    assert not any(r.done for r in results[:-1])
    last = results[-1]
    assert (last.done, last.success, last.valid_action, last.info["truncated"]) == (True, False, False, True)


def test_group_envs_share_the_initial_state(suite):
    tid = suite.panel("train").task_ids[3]
    a, b = suite.make_env(), suite.make_env()
    assert a.reset(tid) == b.reset(tid)
    assert a.step(act("search[hoodie]")) == b.step(act("search[hoodie]"))


# ---------------------------------------------------------------------------------------------- panels, tasks


def test_panels_are_fixed_disjoint_and_written(suite, tmp_path):
    ev, tr = suite.panel("eval"), suite.panel("train")
    assert len(ev.task_ids) == 20 and len(tr.task_ids) == 280 - 40
    assert not set(ev.task_ids) & set(tr.task_ids)
    again = WebshopSuite(SMALL, tmp_path)
    assert again.panel("eval") == ev and again.panel("train") == tr
    assert [again.goals[t] for t in ev.task_ids] == [suite.goals[t] for t in ev.task_ids]  # prices included
    files = sorted((tmp_path / "panels").glob("*.json"))
    assert [f.name.split("_")[0] for f in files] == ["eval", "train"]
    assert TaskPanel.read(files[0]) == ev
    other = WebshopSuite(
        WebshopConfig(num_products=140, eval_panel_size=20, train_offset=40, seed=1), tmp_path
    )
    assert other.panel("eval") != ev
    with pytest.raises(ValueError, match="valid choices"):
        suite.panel("test")


def test_task_metadata_and_categories(suite):
    cats = {suite.task(t).category for t in suite.panel("train").task_ids}
    assert cats == set(SKILL_CATEGORIES) == set(suite.columns)
    task = suite.task(suite.panel("eval").task_ids[0])
    assert task.instruction.startswith("i need a") and "price lower than" in task.instruction
    assert suite.skill_key(task) == task.category


def test_registry_builds_the_suite(tmp_path):
    s = make_suite("webshop", SMALL, tmp_path)
    assert isinstance(s, WebshopSuite) and (tmp_path / "webshop" / "panels").is_dir()


def test_config_rejects_bad_combinations():
    with pytest.raises(ValueError, match="go together"):
        WebshopConfig(product_file="x.json")
    with pytest.raises(ValueError, match="overlap"):
        WebshopConfig(eval_panel_size=600)


# ---------------------------------------------------------------------------------------------- prompt


def test_prompt_first_step_history_window_and_fallback(suite):
    tid = suite.panel("eval").task_ids[0]
    env = suite.make_env()
    obs, task = env.reset(tid), suite.task(tid)
    p0 = suite.prompt(task, [], obs, 0)
    assert f"Your task is to: {task.instruction}.\nYour current observation is: 'Search'." in p0
    assert "[\n'search[<your query>]',\n'click[search]',\n]" in p0 and "Prior to this step" not in p0
    hist = [Turn(f"o{i}", f"a{i}") for i in range(1, 4)]
    p3 = suite.prompt(task, hist, obs, 3)
    assert "already taken 3 step(s). Below are the most recent 2 observations" in p3
    assert "[Observation 2: 'o2', Action 2: 'a2']\n[Observation 3: 'o3', Action 3: 'a3']" in p3
    assert "o1" not in p3 and "You are now at step 4" in p3
    big = [Turn("x" * 7000, "a")] * 2
    assert suite.prompt(task, big, obs, 2) == p0  # over 13,000 characters: no-history template


# ---------------------------------------------------------------------------------------------- expert


@pytest.fixture(scope="module")
def first_match_suite(tmp_path_factory):
    return WebshopSuite(dataclasses.replace(SMALL, expert="first_match"), tmp_path_factory.mktemp("ws_fm"))


@pytest.mark.parametrize("expert", ["target", "first_match"])
def test_expert_succeeds_on_the_eval_panel(expert, suite, first_match_suite):
    suite = first_match_suite if expert == "first_match" else suite
    env, wins = suite.make_env(), 0
    for tid in suite.panel("eval").task_ids:
        env.reset(tid)
        for _ in range(suite.max_turns):
            reply = suite.expert_action(env)
            assert reply.startswith("<think>") and len(reply) < 120
            r = env.step(reply)
            assert r.valid_action and r.info["action_effective"]
            if r.done:
                break
        wins += r.success
    assert wins / len(suite.panel("eval").task_ids) >= 0.95


def test_first_match_expert_buys_the_first_result_that_scores_one(suite, first_match_suite):
    """The target expert pages to the goal's own product; first_match clicks the first product on the page
    that the goal's options buy at score 1.0, so its clicks go to the top result more often."""
    bought_other, top_clicks = 0, {"target": 0, "first_match": 0}
    for name, s in (("target", suite), ("first_match", first_match_suite)):
        env = s.make_env()
        for tid in s.panel("eval").task_ids:
            env.reset(tid)
            env.step(s.expert_action(env))  # the search
            products = [c for c in env.observation.admissible if c[6:-1] not in ("back to search", "next >")]
            click = s.expert_action(env).split("<action>")[1].removesuffix("</action>")
            top_clicks[name] += click == products[0]
            if name == "first_match" and click in products:
                asins = [p[6:-1].upper() for p in products]
                chosen = asins.index(click[6:-1].upper())
                # every product before the chosen one scores below 1.0, the chosen one 1.0
                assert [s._wanted_item(env.goal, a) for a in asins[: chosen + 1]] == [False] * chosen + [True]
                bought_other += asins[chosen] != env.goal.asin
    assert top_clicks["first_match"] > top_clicks["target"]
    assert bought_other > 0


# ---------------------------------------------------------------------------------------------- data


def test_fixed100_goals_parse(shared_data):
    goals = load_fixed_goals(shared_data / "webshop" / "fixed100_goals.json")
    assert len(goals) == 100 and len({g["asin"] for g in goals}) == 100
    assert sum(g["price_upper"] is not None for g in goals) == 99
    assert sum(bool(g["goal_options"]) for g in goals) == 77
    assert goals[0]["price_upper"] == 20.0 and not goals[0]["instruction"].endswith("[Search]")
    assert goals[0]["category"] == "beauty_health"
    assert len({g["category"] for g in goals}) >= 5


def test_skill_category_keywords():
    assert skill_category("men's running shoes") == "footwear"
    assert skill_category("hair extensions, wigs & accessories") == "beauty_health"
    assert skill_category("laptop", "Electronics › Computers") == "electronics"
    assert skill_category("throw pillow covers") == "home_decor"
    assert skill_category("dog treats") == "other"


def test_real_webshop_files_load(tmp_path):
    items = [
        {"asin": "B000000001", "name": "Cozy Cotton Hoodie", "full_description": "A warm hoodie.",
         "small_description": "Machine wash", "pricing": "$10.00 - $20.00", "category": "fashion",
         "query": "Hoodies ", "product_category": "Clothing › Men › Hoodies",
         "customization_options": {"Color": [{"value": "Black/White", "image": None}, {"value": "Red"}],
                                   "Size": [{"value": "Small"}, {"value": "Large"}]}},
        {"asin": "B000000001", "name": "duplicate", "pricing": "", "customization_options": None},
        {"asin": "nan", "name": "skipped"},
        {"asin": "B000000002", "name": "Steel Water Bottle", "full_description": "", "small_description": [],
         "pricing": "", "category": "kitchen", "query": "bottle", "product_category": "Home › Kitchen",
         "customization_options": None},
    ]  # fmt: skip
    attrs = {"B000000001": {"attributes": ["machine wash"], "instruction": "i want a cotton hoodie.",
                            "instruction_attributes": ["cotton"]},
             "B000000002": {"attributes": []}}  # fmt: skip
    (tmp_path / "items.json").write_text(json.dumps(items))
    (tmp_path / "attrs.json").write_text(json.dumps(attrs))
    cfg = WebshopConfig(product_file=str(tmp_path / "items.json"), attr_file=str(tmp_path / "attrs.json"),
                        num_products=None, eval_panel_size=1, train_offset=2)  # fmt: skip
    s = WebshopSuite(cfg, tmp_path / "cache")
    assert sorted(s.products) == ["B000000001", "B000000002"]
    hoodie, bottle = s.products["B000000001"], s.products["B000000002"]
    assert hoodie.options == {"color": ("black | white", "red"), "size": ("small", "large")}
    assert hoodie.bullets == ("Machine wash",) and hoodie.query == "hoodies" and hoodie.category == "apparel"
    assert 10.0 <= hoodie.price <= 20.0 and hoodie.price_tag == "$10.0 to $20.0"
    assert (bottle.price, bottle.attributes) == (100.0, ("DUMMY_ATTR",))
    assert len(s.goals) == 4  # 2 colours x 2 sizes; the bottle has no instruction
    g = s.goals[s.panel("eval").task_ids[0]]
    assert g.instruction.startswith("i want a cotton hoodie. with color: ")  # upstream keeps the period
    assert g.price_upper in (30.0, 40.0, 50.0)
    env = s.make_env()
    env.reset(g.goal_id)
    while not (r := env.step(s.expert_action(env))).done:
        pass
    assert r.success


def test_random_action_searches_the_key_phrase(suite):
    import random

    env = suite.make_env()
    obs = env.reset(suite.panel("eval").task_ids[0])
    replies = {suite.random_action(env, obs, random.Random(i)) for i in range(20)}
    key = suite.key_phrase(env.goal.instruction)
    assert replies == {
        f"<think>explore</think><action>search[{key}]</action>",
        "<think>explore</think><action>click[search]</action>",
    }
    assert not key.startswith("i need")


# ---------------------------------------------------------------------------------------------- bm25s and JAX


@pytest.mark.parametrize(
    "code",
    [
        "import envs.webshop.engine",
        "from envs.search_qa.retrievers import BM25Retriever; BM25Retriever([('1', 'a')])",
    ],
)
def test_bm25s_starts_jax_on_the_cpu(code, tmp_path):
    """bm25s runs a JAX top-k at import when JAX is installed; on a GPU machine that preallocated 75 % of the
    GPU (61 GiB of an H100) before the trainer's first CUDA call. A stand-in `jax` records the platform JAX
    would start on; the user's own JAX_PLATFORMS wins."""
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text("")
    (tmp_path / "jax" / "lax.py").write_text(
        "import os, pathlib\n"
        "def top_k(x, k):\n"
        f"    pathlib.Path({str(tmp_path / 'platform.txt')!r}).write_text(os.environ.get('JAX_PLATFORMS', 'unset'))\n"
        "    return x[:k], list(range(k))\n"
    )
    repo = Path(__file__).resolve().parents[1]
    for preset, expected in ((None, "cpu"), ("cuda", "cuda")):
        env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(repo)])
        if preset:
            env["JAX_PLATFORMS"] = preset
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=repo)
        assert (tmp_path / "platform.txt").read_text() == expected


def test_index_product_links_name_products_by_position(suite, tmp_path):
    """`product_links: index`: the results page shows and clicks `item k` for its k-th product, an ASIN typed
    there is a no-op, and the expert's episodes are the same as with ASIN links."""
    indexed = WebshopSuite(dataclasses.replace(SMALL, product_links="index"), tmp_path)
    tid = suite.panel("eval").task_ids[0]
    env = indexed.make_env()
    env.reset(tid)
    env.step(act(f"search[{indexed.goals[tid].name}]"))
    asins = indexed.browser.page_asins(env.state)
    n = len(asins)
    assert n >= 2 and env.state.page == "results"
    obs = env.observation
    assert not any(a in obs.text for a in asins)  # no ASIN left on the page
    assert [f"'item {k}'" in obs.text for k in range(1, n + 1)] == [True] * n
    assert [a for a in obs.admissible if "item" in a] == [f"click[item {k}]" for k in range(1, n + 1)]
    assert not env.step(act(f"click[{asins[1].lower()}]")).info["action_effective"]
    assert env.state.page == "results"
    assert env.step(act("click[item 2]")).info["action_effective"]
    assert env.state.page == "item" and env.state.asin == asins[1]
    assert indexed.copied_spans(act("click[item 2]")) == []
    # the expert plays the same episodes: the same browser actions, product clicks by position
    plain, clicks = suite.make_env(), 0
    for t in suite.panel("eval").task_ids[:8]:
        env.reset(t), plain.reset(t)
        for _ in range(suite.max_turns):
            a, b = indexed.expert_action(env), suite.expert_action(plain)
            action = indexed.parse_action(a).action
            clicks += action.startswith("click[item ")
            assert env._to_browser(action) == suite.parse_action(b).action
            r, q = env.step(a), plain.step(b)
            assert (r.done, r.success) == (q.done, q.success)
            if r.done:
                break
    assert clicks >= 8

"""Warm start (sdar/warmstart.py): the SFT data is the rollout's prompt format, skills share, completion-only
loss, a few SFT steps lower the loss and save a loadable model, and the CLI writes its files.

The tiny model (1 layer, hidden 64) is built in code from env text; no downloads.
"""

import json
import random
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import pytest
import torch

from envs.registry import make_suite
from envs.skills import SkillProvider, teacher_prefix
from sdar import configlib, models
from sdar.policy import Generation, HFPolicy, chat_prompt
from sdar.rollout import rollout
from sdar.warmstart import (
    WarmstartConfig,
    build_dataset,
    copy_batch,
    copy_converged,
    copy_example,
    copy_pretrain,
    demo_examples,
    demo_task_ids,
    rename_copies,
    sft_config,
    span_accuracy,
    train_sft,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Env cache + a 1-layer tiny-qwen3 whose tokenizer is trained on a few expert episodes of every env."""
    from sdar.commands.envs import play_episode

    root = tmp_path_factory.mktemp("ws")
    cache = root / "envs"
    suites = {n: make_suite(n, cache_dir=cache) for n in ("alfworld", "webshop", "search_qa")}
    corpus = []
    for s in suites.values():
        for task_id in s.panel("train").task_ids[:3]:
            corpus += play_episode(s, task_id, "expert", random.Random(0))[2]
    cfg = configlib.build(
        models.ModelsConfig, {"tiny_qwen3": {"num_layers": 1, "hidden_size": 64, "intermediate_size": 128}}
    )
    models.build("tiny-qwen3", root / "model", cfg, corpus=corpus)
    return root, cache, suites, models.load_tokenizer(root / "model")


class ReplayPolicy:
    """Replies with the recorded demonstration of one episode and records the contents it was asked about."""

    def __init__(self, tokenizer, replies):
        self.tokenizer, self.replies, self.contents = tokenizer, list(replies), []

    def generate(self, contents, *, temperature, top_p=1.0, groups=None):
        assert len(contents) == 1
        self.contents.append(contents[0])
        return [Generation((), (), self.replies[len(self.contents) - 1])]


@pytest.mark.parametrize("env", ["alfworld", "webshop", "search_qa"])
@pytest.mark.parametrize("share", [0.0, 1.0])
def test_prompts_are_the_rollout_prompts(tiny, env, share):
    root, _, suites, tok = tiny
    suite = suites[env]
    cfg = WarmstartConfig(episodes=2, noise_eps=0.3, skills_share=share, skills_placement="student", seed=1)
    skills = SkillProvider(env)
    examples, _ = demo_examples(suite, tok, cfg, skills_for=skills.skills_for)
    for task_id in suite.panel("train").task_ids[:2]:
        ep = [e for e in examples if e["task_id"] == task_id]
        assert ep and all(e["skills"] == bool(share) for e in ep)
        policy = ReplayPolicy(tok, [e["completion"].removesuffix(tok.eos_token) for e in ep])
        prefix = (lambda t: teacher_prefix(skills.skills_for(t))) if share else None
        rollout(policy, suite, [task_id], group_size=1, temperature=1.0, student_prefix=prefix)
        assert [chat_prompt(tok, c, enable_thinking=False) for c in policy.contents] == [
            e["prompt"] for e in ep
        ]
        # the token ids the rollout's policy feeds the model are the SFT prompt's ids
        hf = HFPolicy(None, tok, max_prompt_tokens=4096, max_new_tokens=8)
        ids = tok(ep[0]["prompt"] + ep[0]["completion"], add_special_tokens=False).input_ids
        assert ids[: len(hf.encode(policy.contents[:1])[0])] == hf.encode(policy.contents[:1])[0]


def test_demo_task_ids_deal_the_categories_round_robin_and_cycle():
    cat = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "c1": "c", "c2": "c"}
    ids = list(cat)
    assert demo_task_ids(ids, cat.get, 4, "panel") == ["a1", "a2", "a3", "b1"]
    assert demo_task_ids(ids, cat.get, 8, "panel")[6:] == ["a1", "a2"]
    assert demo_task_ids(ids, cat.get, 8, "by_category") == ["a1", "b1", "c1", "a2", "c2", "a3", "a1", "b1"]
    with pytest.raises(ValueError, match="empty"):
        demo_task_ids([], cat.get, 1, "panel")


def test_search_qa_demonstrations_cover_every_source_only_by_category(tiny):
    suite = tiny[2]["search_qa"]
    ids, cat = suite.panel("train").task_ids, lambda t: suite.task(t).category
    # the panel lists its sources in blocks, so its first tasks are all of one source
    assert {cat(t) for t in demo_task_ids(ids, cat, 70, "panel")} == {"nq"}
    counts = Counter(cat(t) for t in demo_task_ids(ids, cat, 70, "by_category"))
    assert counts == {s: 10 for s in suite.columns}


def test_teacher_placement_and_skills_share(tiny):
    _, _, suites, tok = tiny
    suite = suites["search_qa"]
    skills = SkillProvider("search_qa")
    cfg = WarmstartConfig(episodes=8, skills_share=0.25, skills_placement="both", noise_eps=0.0)
    examples, summary = demo_examples(suite, tok, cfg, skills_for=skills.skills_for)
    with_skills = {e["task_id"] for e in examples if e["skills"]}
    assert summary["skill_episodes"] == len(with_skills) == 2
    starts = {e["task_id"]: e["prompt"] for e in examples if e["skills"] and e["turn"] == 0}
    teacher = [p for p in starts.values() if p.startswith("[Privileged Skill Information]\n")]
    student = [
        p for p in starts.values() if p.startswith("<|im_start|>user\n[Privileged Skill Information]\n")
    ]
    assert len(teacher) == len(student) == 1
    task = suite.task(next(t for t, p in starts.items() if p in teacher))
    assert teacher[0].startswith(teacher_prefix(skills.skills_for(task)) + "<|im_start|>user\n")
    assert all(e["completion"].endswith("<|im_end|>") for e in examples)
    # deterministic given the seed; noise changes the data
    assert demo_examples(suite, tok, cfg, skills_for=skills.skills_for)[0] == examples
    noisy, s2 = demo_examples(suite, tok, replace(cfg, noise_eps=0.5), skills_for=skills.skills_for)
    assert s2["expert_turns"] < s2["turns"] and noisy != examples
    only, _ = demo_examples(suite, tok, replace(cfg, noise_eps=0.5, expert_turns_only=True),
                            skills_for=skills.skills_for)  # fmt: skip
    assert only and all(e["expert"] for e in only)
    # a per-environment episode count overrides `episodes` (balancing the multi-task mix)
    more, s3 = demo_examples(
        suite, tok, replace(cfg, episodes_per_env={"search_qa": 12}), skills_for=skills.skills_for
    )
    assert len({e["task_id"] for e in more}) == 12 and s3["skill_episodes"] == 3
    with pytest.raises(ValueError, match="valid choices"):
        WarmstartConfig(episodes_per_env={"minecraft": 3})


def test_rename_copies_renames_every_occurrence_in_its_case():
    prompt = ("Task: i need a Quick Dry towel\nObs: 'BE90A1F2C3' [SEP] 'quick dry towel set' [SEP] 'quick dry towels'"
              "\nAdmissible: click[be90a1f2c3] | click[buy now]")  # fmt: skip
    reply = "<think>search</think><action>search[quick dry towel]</action>"
    p, c, k = rename_copies(
        prompt, reply, ["quick dry towel", "not in the prompt"], ["alpha"], random.Random(0)
    )
    assert k == 1 and c == "<think>search</think><action>search[alpha alpha alpha]</action>"
    assert p == prompt.replace("Quick Dry towel", "Alpha Alpha alpha").replace("'quick dry towel set'",
                                                                               "'alpha alpha alpha set'")  # fmt: skip
    assert "'quick dry towels'" in p  # whole words only

    reply = "<think>this is the item</think><action>click[be90a1f2c3]</action>"
    p, c, k = rename_copies(prompt, reply, ["be90a1f2c3"], ["alpha"], random.Random(0))
    new = re.search(r"click\[(\w+)\]", c).group(1)
    assert k == 1 and new != "be90a1f2c3" and "be90a1f2c3" not in p.lower()
    # an id keeps its first character and its shape: a digit where a digit was, a hex letter where a letter was
    assert new[0] == "b" and [ch.isdigit() for ch in new] == [ch.isdigit() for ch in "be90a1f2c3"]
    assert set(new) <= set("0123456789abcdef")
    assert p == prompt.replace("BE90A1F2C3", new.upper()).replace("click[be90a1f2c3]", f"click[{new}]")


@pytest.mark.parametrize("env", ["alfworld", "webshop", "search_qa"])
def test_copy_augmentation_renames_what_the_reply_copies(tiny, env):
    _, _, suites, tok = tiny
    suite = suites[env]
    cfg = WarmstartConfig(episodes=6, noise_eps=0.0, skills_share=0.0)
    plain, _ = demo_examples(suite, tok, cfg)
    renamed, summary = demo_examples(suite, tok, replace(cfg, rename_share=1.0))
    # the same demonstrations are played; only the text of the examples changes
    key = lambda e: (e["task_id"], e["turn"], e["expert"])  # noqa: E731
    assert list(map(key, plain)) == list(map(key, renamed))
    eos = tok.eos_token
    holds = lambda text, span: re.search(rf"(?<!\w){re.escape(span)}(?!\w)", text, re.I) is not None  # noqa: E731
    changed = 0
    for a, b in zip(plain, renamed, strict=True):
        spans = suite.copied_spans(a["completion"].removesuffix(eos))
        copyable = [s for s in spans if holds(a["prompt"], s)]
        assert b["renamed"] == bool(copyable)
        if not copyable:
            assert b == a
            continue
        changed += 1
        new = suite.copied_spans(b["completion"].removesuffix(eos))
        assert new != spans and len(new) == len(spans)
        for s_old, s_new in zip(spans, new, strict=True):
            assert not holds(b["prompt"], s_old)
            assert holds(b["prompt"], s_new)  # the renamed reply still copies its prompt
    assert summary["renamed_examples"] == changed
    assert (changed > 0) == (
        env != "alfworld"
    )  # ALFWorld's replies name a closed vocabulary: nothing renamed


def test_loss_is_on_completion_tokens_only(tiny, tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    root, _, suites, tok = tiny
    cfg = WarmstartConfig(envs=("webshop",), episodes=2, skills_share=0.0)
    ds, _ = build_dataset(cfg, suites, tok)
    model = AutoModelForCausalLM.from_pretrained(root / "model")
    trainer = SFTTrainer(model=model, args=sft_config(cfg, tmp_path, use_cpu=True),
                         train_dataset=ds.select_columns(["prompt", "completion"]), processing_class=tok)  # fmt: skip
    for row, ex in zip(trainer.train_dataset, ds):
        ids, labels = row["input_ids"], row["labels"]  # completion_mask folded into labels (-100 = no loss)
        trained = [i for i, lab in zip(ids, labels) if lab != -100]
        assert (
            labels == [-100] * (len(ids) - len(trained)) + trained
        )  # the prompt is masked, the completion not
        assert tok.decode(trained) == ex["completion"]
        assert tok.decode(ids[: len(ids) - len(trained)]) == ex["prompt"]
        batch = trainer.data_collator([row])
        assert batch["labels"][0].tolist() == labels


def test_sft_lowers_the_loss_and_round_trips(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    root, _, suites, tok = tiny
    cfg = WarmstartConfig(envs=("search_qa",), episodes=4, skills_share=0.0, max_steps=12, batch_size=4,
                          lr=3e-3, logging_steps=1, warmup_ratio=0.0)  # fmt: skip
    ds, _ = build_dataset(cfg, suites, tok)
    before = {
        k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(root / "model").state_dict().items()
    }
    out = tmp_path / "vanilla"
    res = train_sft(cfg, ds, root / "model", out)
    curve = [loss for _, loss in res["loss_curve"]]
    assert res["steps"] == 12 and sum(curve[-3:]) < sum(curve[:3])
    assert not (out / ".partial").exists() and not (out / ".trainer").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    tok2 = models.load_tokenizer(out)
    assert tok2.padding_side == "left" and tok2("hi").input_ids == tok("hi").input_ids


@pytest.mark.parametrize("completion_only", [True, False])
def test_model_loss_trains_like_trls_fused_lm_head(tiny, tmp_path, completion_only):
    """`fused_lm_head=False` (the model's own causal-LM loss) gives TRL's chunked-head loss step for step, on the
    same labels (prompt masked or not), so the switch only changes the speed."""
    root, _, suites, tok = tiny
    cfg = WarmstartConfig(envs=("webshop",), episodes=3, skills_share=0.0, max_steps=6, batch_size=4, lr=3e-3,
                          logging_steps=1, warmup_ratio=0.0, completion_only_loss=completion_only)  # fmt: skip
    ds, _ = build_dataset(cfg, suites, tok)
    curves = {}
    for fused in (True, False):
        torch.manual_seed(0)
        res = train_sft(replace(cfg, fused_lm_head=fused), ds, root / "model", tmp_path / str(fused),
                        log=lambda _: None)  # fmt: skip
        curves[fused] = [loss for _, loss in res["loss_curve"]]
    assert len(curves[False]) == 6 and curves[False][-1] < curves[False][0]
    assert curves[False] == pytest.approx(curves[True], rel=1e-4)


def test_copy_example_repeats_a_span_and_labels_only_the_repeat():
    rng, pool, text = random.Random(0), [5, 6, 7], list(range(100, 140))
    sources = set()
    for _ in range(200):
        ids, labels = copy_example(rng, pool, text)
        n = sum(lab != -100 for lab in labels)
        assert 6 <= n <= 20 and 0 <= len(ids) - 2 * n <= 10 and len(labels) == len(ids)
        assert ids[:n] == ids[-n:] == labels[-n:] and labels[:-n] == [-100] * (len(ids) - n)
        assert set(ids[n:-n]) <= set(pool)  # the filler
        span = ids[:n]
        if set(span) <= set(pool):
            sources.add("pool")
        else:  # a window of the text: consecutive ids here
            assert span == list(range(span[0], span[0] + n)) and span[0] + n <= 140
            sources.add("text")
    assert sources == {"pool", "text"}
    batch = copy_batch([([1, 2, 1, 2], [-100, -100, 1, 2]), ([3, 3], [-100, 3])], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 1, 2], [3, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 1, 2], [-100, 3, -100, -100]]


def test_span_accuracy_counts_next_token_hits_on_labelled_positions():
    labels = torch.tensor([[-100, -100, 4, 5]])
    logits = torch.zeros(1, 4, 6)
    logits[0, 1, 4] = logits[0, 2, 1] = 1.0  # position 1 predicts 4 (right), position 2 predicts 1 (wrong: 5)
    logits[0, 0, 3] = 1.0  # position 0 predicts an unlabelled token: not counted
    assert span_accuracy(logits, labels) == 0.5


def test_copy_pretraining_forms_induction():
    """A 2-layer model from scratch learns to copy random spans (chance 1/23): the induction heads a tiny model
    needs to continue a passage sentence it started quoting."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=24, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, head_dim=16, intermediate_size=128,
                                         tie_word_embeddings=False, max_position_embeddings=64))  # fmt: skip
    cfg = WarmstartConfig(
        copy_steps=600, copy_lr=3e-3, logging_steps=25, copy_target_accuracy=0.6, copy_window=10
    )
    res = copy_pretrain(model, cfg, list(range(1, 24)), [], pad_id=0, log=lambda _: None)
    accuracy = [a for _, _, a in res["curve"]]
    assert accuracy[0] < 0.3 and res["span_accuracy_window_end"] >= 0.6
    # stopped at the first step whose 10-step mean reached 0.6, well before the cap; that step is the curve's last
    assert res["stopped_early"] and res["steps"] < 600 and res["max_steps"] == 600
    assert res["curve"][-1][0] == res["steps"] and len(accuracy) == -(-res["steps"] // 25)


def test_copy_converged_needs_a_full_window_at_the_target():
    assert not copy_converged([0.9, 0.9], 0.9, window=3)  # window not full
    assert copy_converged([0.1, 0.8, 0.9, 1.0], 0.9, window=3)  # (0.8 + 0.9 + 1.0) / 3 = 0.9
    assert not copy_converged([0.9, 0.8, 0.9, 0.99], 0.9, window=3)  # 2.69 / 3 < 0.9
    assert not copy_converged([1.0] * 5, 0.0, window=3)  # target 0 = off: run every copy step


def test_sft_recomputes_the_forward_only_when_asked(tmp_path):
    """TRL's SFTConfig checkpoints activations by default, which recomputes each forward in the backward (the
    same numbers, a slower step): the warm start turns it off unless `gradient_checkpointing` asks for it."""
    assert sft_config(WarmstartConfig(), tmp_path, use_cpu=True).gradient_checkpointing is False
    on = sft_config(WarmstartConfig(gradient_checkpointing=True), tmp_path, use_cpu=True)
    assert on.gradient_checkpointing is True and on.per_device_train_batch_size == 32


def test_cli_writes_the_files(tiny, tmp_path):
    root, cache, _, _ = tiny
    out = tmp_path / "vanilla"
    res = subprocess.run([sys.executable, "-m", "sdar.cli", "warmstart", "--model", "tiny-qwen3", "--model-dir",
                          str(root / "model"), "--out", str(out), "--profile", "smoke", "--set",
                          f"paths.env_cache={cache}", "--set", "warmstart.episodes=2", "--set",
                          "warmstart.max_steps=2", "--set", "warmstart.batch_size=4", "--set",
                          "warmstart.copy_steps=3", "--set", "warmstart.logging_steps=1"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    for f in ("config.json", "model.safetensors", "tokenizer.json", "config.resolved.yaml", "run.json"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "warmstart.json").read_text())
    assert set(summary["envs"]) == {"alfworld", "webshop", "search_qa"} and summary["steps"] == 2
    assert summary["copy"]["steps"] == 3 and [s for s, _, _ in summary["copy"]["curve"]] == [1, 2, 3]
    assert summary["examples"] == sum(e["examples"] for e in summary["envs"].values()) > 0
    assert "warmstart:" in (out / "config.resolved.yaml").read_text()


def test_profiles_resolve_the_warmstart_section():
    from sdar import config as config_mod
    from sdar.commands.train import profile_file

    cfg = configlib.load(config_mod.Config, [profile_file("mini")], [])
    assert isinstance(cfg.warmstart, WarmstartConfig) and cfg.warmstart.envs


def test_cli_reuses_a_stored_warm_start_byte_for_byte_and_refuses_other_settings(tmp_path, capsys):
    """`sdar-bench warmstart --stored DIR` copies DIR (every file, so the model revision is the stored one's)
    where it was made with the settings asked now; other settings are refused and nothing is written."""
    from sdar import config as config_mod
    from sdar.cli import main
    from sdar.commands.train import profile_file

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    args = ["warmstart", "--model", "tiny-qwen3", "--model-dir", str(base), "--profile", "mini",
            "--set", "warmstart.envs=[alfworld]"]  # fmt: skip
    cfg = configlib.load(
        config_mod.Config,
        [profile_file("mini")],
        ["warmstart.envs=[alfworld]"],
        extra={"run": {"model": "tiny-qwen3", "profile": "mini"}},
    )
    stored = tmp_path / "baselines" / "warmstarts" / "tiny-qwen3" / "alfworld"
    stored.mkdir(parents=True)
    (stored / "config.resolved.yaml").write_text(configlib.dump_yaml(cfg))
    (stored / "model.safetensors").write_bytes(b"weights")
    (stored / "run.json").write_text('{"created": "another sitting"}\n')
    (stored / "warmstart.json").write_text('{"steps": 1500}\n')

    out = tmp_path / "vanilla"
    assert main([*args, "--out", str(out), "--stored", str(stored)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        p.name: p.read_bytes() for p in stored.iterdir()
    }
    assert models.model_revision(out) == models.model_revision(stored)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["restored_from"] == str(stored)

    other = tmp_path / "other"
    assert main([*args, "--out", str(other), "--stored", str(stored), "--set", "warmstart.max_steps=7"]) == 2
    assert "warmstart.max_steps: stored" in capsys.readouterr().err and not other.exists()

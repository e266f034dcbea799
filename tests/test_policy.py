"""Scoring and generation of the transformers backend on a tiny model built in code."""

import torch
from transformers import AutoModelForCausalLM, Qwen3Config

from sdar.policy import (
    MIN_SHARED_PREFIX,
    batched_logprobs,
    pad_pairs,
    prefix_cuts,
    sequence_logprobs,
    shared_batched_logprobs,
    shared_sequence_logprobs,
)


def tiny_model():
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=16, intermediate_size=64)  # fmt: skip
    return AutoModelForCausalLM.from_config(cfg).eval()


def test_pad_pairs_layout():
    ids, attn, pos, mask, P = pad_pairs([[5, 6], [7]], [[8], [9, 10]], pad_id=0)
    assert P == 2
    assert ids.tolist() == [[5, 6, 8, 0], [0, 7, 9, 10]]
    assert attn.tolist() == [[1, 1, 1, 0], [0, 1, 1, 1]]
    assert pos.tolist() == [[0, 1, 2, 2], [0, 0, 1, 2]]  # positions count real tokens only
    assert mask.tolist() == [[1, 0], [1, 1]]


def test_batched_scoring_equals_one_sample_at_a_time_in_input_order():
    model = tiny_model()
    prompts = [[1 + i % 7] * (3 + (5 * i) % 9) for i in range(11)]
    responses = [[2 + i % 3] * (1 + i % 4) for i in range(11)]
    batched = batched_logprobs(model, prompts, responses, 0, batch_size=4)
    for p, r, got in zip(prompts, responses, batched):
        with torch.no_grad():
            single, mask, _ = sequence_logprobs(model, [p], [r], 0)
        assert got.shape == (len(r),) and mask.sum() == len(r)
        torch.testing.assert_close(got, single[0, : len(r)], atol=1e-5, rtol=1e-5)


def test_logprobs_carry_gradient_and_entropy_is_a_distribution_entropy():
    model = tiny_model()
    logp, mask, ent = sequence_logprobs(model, [[1, 2, 3]], [[4, 5]], 0, with_entropy=True)
    (logp * mask).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert (ent[mask > 0] > 0).all() and (ent <= torch.log(torch.tensor(50.0)) + 1e-5).all()


def test_prefix_cached_scoring_equals_scoring_the_whole_prompt():
    from sdar.policy import prefix_cache

    model = tiny_model()
    prefixes = [[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8], [1, 6, 1, 8, 0, 3]]  # of different lengths
    prompts = [[7, 8, 9][: 1 + i % 3] + [11] * (i % 4) for i in range(7)]
    responses = [[12 + i % 5] * (1 + (2 * i) % 5) for i in range(7)]
    rows = [i % 3 for i in range(7)]
    cache = prefix_cache(model, prefixes)
    shared = batched_logprobs(model, prompts, responses, 0, batch_size=3, prefix=cache, prefix_rows=rows)
    full = batched_logprobs(
        model, [prefixes[g] + p for g, p in zip(rows, prompts)], responses, 0, batch_size=3
    )
    for a, b in zip(shared, full):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_prefix_cuts_keep_the_last_prompt_token_and_skip_short_heads():
    prompts = [[1, 2, 3, 4, 5], [1, 2, 3, 9], [1, 2, 3, 4], [7, 8, 9], [7, 8, 9], [5, 6]]
    groups = ["a", "a", "a", "b", "b", "c"]
    # a: common head [1, 2, 3] -> 2 shared (token 3 stays with each sample); b: identical prompts of 3 ->
    # 2; c alone: nothing to share -> 0
    assert prefix_cuts(prompts, groups, min_len=1) == [2, 2, 2, 2, 2, 0]
    assert prefix_cuts(prompts, groups, min_len=2) == [2, 2, 2, 2, 2, 0]
    assert prefix_cuts(prompts, groups, min_len=3) == [0] * 6
    assert prefix_cuts(prompts, groups, min_len=1, singles=True) == [2, 2, 2, 2, 2, 1]  # c: all but its last


def _turn_samples():
    """Three tasks' turn samples: each task's prompts start with its head, then differ (history, observation);
    task "c" shares only one token, so it is scored in full."""
    heads = {"a": [3, 1, 4, 1, 5, 9, 2, 6], "b": [2, 7, 1, 8, 2, 8], "c": [4]}
    groups = ["a", "b", "a", "c", "b", "a", "c", "b"]
    prompts = [heads[g] + [10 + i % 4] * (1 + i % 3) for i, g in enumerate(groups)]
    responses = [[20 + i % 5] * (1 + (3 * i) % 5) for i in range(len(groups))]
    return prompts, responses, groups


def test_shared_prefix_scoring_and_gradients_equal_the_full_prompts():
    prompts, responses, groups = _turn_samples()
    cuts = prefix_cuts(prompts, groups, min_len=3)
    assert cuts == [7, 5, 7, 0, 5, 7, 0, 5]  # heads of 8 and 6 tokens, less the token each sample keeps
    weights = torch.linspace(0.5, 2.0, 5)
    results = []
    for shared in (True, False):
        model = tiny_model()
        if shared:
            logp, mask, ent = shared_sequence_logprobs(
                model, prompts, responses, 0, groups, cuts, with_entropy=True
            )
        else:
            logp, mask, ent = sequence_logprobs(model, prompts, responses, 0, with_entropy=True)
        ((logp * weights).sum() + 0.1 * ent.sum()).backward()  # a token-weighted loss, entropy included
        results.append((logp.detach(), mask, ent.detach(), [p.grad.clone() for p in model.parameters()]))
    (lp_s, m_s, e_s, g_s), (lp_f, m_f, e_f, g_f) = results
    assert torch.equal(m_s, m_f)
    torch.testing.assert_close(lp_s, lp_f, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_s, e_f, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_s, g_f):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert sum(g.abs().sum() for g in g_s) > 0


def test_shared_prefix_batched_scoring_equals_batched_scoring():
    prompts, responses, groups = _turn_samples()
    model = tiny_model()
    cuts = prefix_cuts(prompts, groups, min_len=3)
    shared = shared_batched_logprobs(model, prompts, responses, 0, groups, cuts, batch_size=3)
    full = batched_logprobs(model, prompts, responses, 0, batch_size=3)
    for a, b, r in zip(shared, full, responses):
        assert a.shape == (len(r),)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # no cut: exactly the plain path
    for a, b in zip(
        shared_batched_logprobs(model, prompts, responses, 0, groups, [0] * 8, batch_size=3), full
    ):
        assert torch.equal(a, b)


def _built_tiny_qwen3(tmp_path):
    """A 1-layer tiny-qwen3 built by the model zoo (its own BPE on a one-line corpus): tokenizer, eval model."""
    from sdar import configlib, models

    corpus = ["Task: put a mug in the fridge. Observation: you see a mug 1. <action>take mug 1</action>"] * 20
    cfg = configlib.build(models.ModelsConfig, {"tiny_qwen3": {"num_layers": 1, "hidden_size": 32,
                          "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1, "head_dim": 16}})  # fmt: skip
    models.build("tiny-qwen3", tmp_path / "m", cfg, corpus=corpus)
    return models.load_tokenizer(tmp_path / "m"), AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()


def test_teacher_shares_the_skill_prefix_and_matches_full_scoring(tmp_path):
    """The skill block's keys/values are reused across samples; truncated prompts fall back to full scoring."""
    from sdar.policy import encode_prompts
    from sdar.teacher import teacher_logprobs

    tok, model = _built_tiny_qwen3(tmp_path)
    prompts = encode_prompts(
        tok, [f"Task: put a mug in the fridge {i}." * (1 + i % 3) for i in range(6)], 512
    )
    responses = [
        tok("<action>take mug 1</action>", add_special_tokens=False).input_ids[: 3 + i] for i in range(6)
    ]
    skills = ["Look in the fridge first."] * 4 + ["Mugs are on shelves."] * 2
    for limit in (
        512,
        40,
    ):  # 40 tokens: left truncation cuts into the skill block, the full path scores those
        a = teacher_logprobs(model, tok, prompts, responses, skills, max_prompt_tokens=limit, batch_size=4)
        by_task = teacher_logprobs(model, tok, prompts, responses, skills, max_prompt_tokens=limit,
                                   batch_size=4, groups=["t0", "t0", "t1", "t1", "t2", "t2"])  # fmt: skip
        b = teacher_logprobs(
            model, tok, prompts, responses, skills, max_prompt_tokens=limit, share_prefix=False
        )
        for x, y, z in zip(a, b, by_task):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(z, y, atol=1e-5, rtol=1e-5)


def test_generation_continuing_shared_heads_gives_the_same_replies(tmp_path):
    """Greedy replies are token-identical with and without the shared head; sampling stays seeded."""
    from sdar.policy import HFPolicy

    tok, model = _built_tiny_qwen3(tmp_path)
    head = {
        "a": "Task: put a mug in the fridge, then look at it. " * 4,
        "b": "Task: find the mug on the shelf. " * 5,
    }
    groups = ["a", "b", "a", "b", "a", "c"]  # "c": one row, generated without a shared head
    contents = [head.get(g, "Task: a lone task. ") + f"Observation {i}: you see a mug {i}." * (1 + i % 2)
                for i, g in enumerate(groups)]  # fmt: skip
    kw = dict(max_prompt_tokens=512, max_new_tokens=12, batch_size=4)
    shared, plain = HFPolicy(model, tok, **kw), HFPolicy(model, tok, share_prefix=False, **kw)
    cuts = prefix_cuts(shared.encode(contents[:4]), groups[:4])
    assert all(c >= MIN_SHARED_PREFIX for c in cuts)  # the first chunk of 4 shares heads (chat header, task)
    seen = []  # token positions each forward computes: the shared heads are computed once per group
    model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["input_ids"].numel()), with_kwargs=True)
    a = shared.generate(contents, temperature=0.0, groups=groups)
    n_shared = sum(seen)
    seen.clear()
    b = plain.generate(contents, temperature=0.0, groups=groups)
    assert n_shared < 0.8 * sum(seen)
    assert [g.response_ids for g in a] == [g.response_ids for g in b]
    assert (
        [g.prompt_ids for g in a] == [g.prompt_ids for g in b] == [tuple(p) for p in shared.encode(contents)]
    )
    assert all(len(g.response_ids) > 0 for g in a)
    torch.manual_seed(3)
    s1 = shared.generate(contents, temperature=1.0, groups=groups)
    torch.manual_seed(3)
    s2 = shared.generate(contents, temperature=1.0, groups=groups)
    assert [g.response_ids for g in s1] == [g.response_ids for g in s2]

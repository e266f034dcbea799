"""The skill-conditioned self-teacher (PAPER.md §3, `build_teacher_batch`).

The teacher is the same live weights, scored once per RL step before the update, with no gradient, on
    "[Privileged Skill Information]\\n" + skills + "\\n\\n" + decode(student prompt ids, with special tokens)
re-tokenized without special tokens and left-truncated to the prompt limit (so long histories can cut into
the skill text, as upstream), followed by the student's own response tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from envs.skills import teacher_prefix
from sdar.policy import batched_logprobs, prefix_cache


def teacher_prompt_ids(
    tokenizer, student_prompt_ids: Sequence[int], skill_text: str, max_prompt_tokens: int
) -> list[int]:
    """Token ids of the teacher's prompt for one sample."""
    text = teacher_prefix(skill_text) + tokenizer.decode(list(student_prompt_ids), skip_special_tokens=False)
    return tokenizer(text, add_special_tokens=False).input_ids[-max_prompt_tokens:]


@torch.no_grad()
def teacher_logprobs(
    model, tokenizer, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
    skill_texts: Sequence[str], *, max_prompt_tokens: int, batch_size: int = 64, share_prefix: bool = True,
) -> list[torch.Tensor]:  # fmt: skip
    """log π_T(y_t | skills + prompt, y_<t) per sample (1-D tensors), no gradient.

    `share_prefix`: the skill block is the same for every sample of a task (all G episodes, all turns), so its
    keys/values are computed once per distinct skill text (all texts in one forward) and reused; samples whose
    left truncation cut into the skill block, or whose tokens do not start with it, are scored in full. Both
    paths give the same numbers (tests/test_policy.py); the shared one skips most of the teacher's extra cost.
    """
    t_prompts = [
        teacher_prompt_ids(tokenizer, p, s, max_prompt_tokens) for p, s in zip(prompt_ids, skill_texts)
    ]
    responses = [list(r) for r in response_ids]
    pad = tokenizer.pad_token_id
    if not share_prefix:
        return batched_logprobs(model, t_prompts, responses, pad, batch_size=batch_size)
    out: list[torch.Tensor | None] = [None] * len(t_prompts)
    prefixes = {s: tokenizer(teacher_prefix(s), add_special_tokens=False).input_ids for s in set(skill_texts)}
    shared, full = [], []
    for i, s in enumerate(skill_texts):
        pre = prefixes[s]
        ok = len(t_prompts[i]) > len(pre) and t_prompts[i][: len(pre)] == pre
        (shared if ok else full).append(i)
    if shared:  # every distinct skill block once, in one forward; all shared samples scored together
        texts = sorted({skill_texts[i] for i in shared})
        row = {s: g for g, s in enumerate(texts)}
        prefix = prefix_cache(model, [prefixes[s] for s in texts])
        scores = batched_logprobs(
            model, [t_prompts[i][len(prefixes[skill_texts[i]]) :] for i in shared], [responses[i] for i in shared],
            pad, batch_size=batch_size, prefix=prefix, prefix_rows=[row[skill_texts[i]] for i in shared],
        )  # fmt: skip
        for i, lp in zip(shared, scores):
            out[i] = lp
    if full:
        for i, lp in zip(full, batched_logprobs(model, [t_prompts[i] for i in full], [responses[i] for i in full],
                                                pad, batch_size=batch_size)):  # fmt: skip
            out[i] = lp
    return out  # type: ignore[return-value]

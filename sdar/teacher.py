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
from sdar.policy import prefix_cuts, shared_batched_logprobs


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
    groups: Sequence | None = None,
) -> list[torch.Tensor]:  # fmt: skip
    """log π_T(y_t | skills + prompt, y_<t) per sample (1-D tensors), no gradient.

    `share_prefix`: the teacher prompts of a group (`groups`, e.g. the rollout's task uids; by default the
    samples with the same skill text) begin with the same tokens: the skill block, then the student's prompt
    head. Their common head's keys/values are computed once per group (all groups in one forward) and every
    sample is scored on top (`sdar.policy.shared_batched_logprobs`); a sample whose left truncation cut into
    the skill block simply shares less, and one alone in its group is scored in full. Both paths give the same
    numbers (tests/test_policy.py); the shared one skips most of the teacher's extra cost.
    """
    t_prompts = [
        teacher_prompt_ids(tokenizer, p, s, max_prompt_tokens) for p, s in zip(prompt_ids, skill_texts)
    ]
    responses = [list(r) for r in response_ids]
    groups = list(groups) if groups is not None else list(skill_texts)
    cuts = prefix_cuts(t_prompts, groups) if share_prefix else [0] * len(t_prompts)
    return shared_batched_logprobs(
        model, t_prompts, responses, tokenizer.pad_token_id, groups, cuts, batch_size=batch_size
    )

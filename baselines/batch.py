"""`LossBatch`: what every loss term of the methods table reads (DESIGN.md §5).

All tensors are (B, T) over the response tokens of B step samples (one sample per agent turn, PAPER §2.0),
right-padded to T. Only `logp` (and `entropy`, when given) carries gradient; the others are scored without
gradient before the update. Padded positions must hold finite values (0 is fine): masks multiply.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from torch import Tensor


@dataclass(frozen=True)
class LossBatch:
    """One micro-batch of response tokens for the loss."""

    logp: Tensor
    """(B, T) log pi_theta(y_t | s_t) under the current weights; carries gradient."""
    old_logp: Tensor
    """(B, T) log pi_old(y_t | s_t), scored at rollout time by the same weights (no gradient)."""
    ref_logp: Tensor
    """(B, T) log pi_ref(y_t | s_t) under the initial (reference) model, for the KL term (no gradient)."""
    mask: Tensor
    """(B, T) float, 1 = generated response token, 0 = padding."""
    advantages: Tensor
    """(B, T) per-token advantages (GRPO / GiGPO broadcast over the response), no gradient."""
    teacher_logp: Tensor | None = None
    """(B, T) log pi_T(y_t | s_t+): rollout-time weights on the skill-augmented prompt; None if unused."""
    entropy: Tensor | None = None
    """(B, T) entropy of pi_theta(. | s_t, y_<t) per position (may carry gradient); None if not computed."""
    step: int = 0
    """RL step index (0-based), used by schedules such as RLSD's warm-down."""

    def __post_init__(self):
        shape = self.logp.shape
        for name in ("old_logp", "ref_logp", "mask", "advantages", "teacher_logp", "entropy"):
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise ValueError(f"LossBatch.{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")

    def to(self, device) -> LossBatch:
        """The same batch with every tensor on `device` (a no-op for tensors already there)."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor)}  # fmt: skip
        return replace(self, **moved)

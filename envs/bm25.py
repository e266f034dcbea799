"""`bm25s`, imported without letting it take the GPU.

When JAX is installed, `import bm25s` imports it and runs one `jax.lax.top_k` (bm25s/selection.py), which starts
JAX's GPU backend and preallocates 75 % of the GPU's memory: on an H100 that left the trainer 18 GiB, then
nothing ("CUDA error: out of memory" in its first generate). The suite scores with `get_scores` and selects
with numpy, never with JAX, so JAX is kept on the CPU unless the user has chosen its platforms (`JAX_PLATFORMS`).
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import bm25s  # noqa: E402

__all__ = ["bm25s"]

"""What the step benchmarks share: `sdar-bench` calls in a subprocess (each run imports the code afresh) and the
tiny model they train, built from the environments' expert text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(cmd: list[str]) -> None:
    """`python -m sdar.cli CMD`; a failure ends the benchmark with the command's stderr."""
    res = subprocess.run([sys.executable, "-m", "sdar.cli", *cmd], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])


def build_tiny_qwen3(tmp: Path, cache: Path, episodes: int, *corpus_flags: str) -> Path:
    """The expert corpus of `episodes` episodes per environment, then tiny-qwen3 on it: the model directory."""
    run(["envs", "corpus", "--out", str(tmp / "corpus.txt"), "--episodes", str(episodes), "--cache", str(cache),
         *corpus_flags])  # fmt: skip
    run(["models", "build", "tiny-qwen3", "--out", str(tmp / "model"), "--corpus", str(tmp / "corpus.txt")])
    return tmp / "model"

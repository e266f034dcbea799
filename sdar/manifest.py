"""run.json: everything that can change a number (STYLE.md rule 8)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "trl",
    "accelerate",
    "alfworld",
    "textworld",
    "bm25s",
    "snakemake",
    "vllm",
    "sdar-bench",
)
REPO = Path(__file__).resolve().parent.parent


def git_state() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", False
    return {
        "sha": sha or "unknown",
        "dirty": dirty,
        "describe": (sha[:12] + ("-dirty" if dirty else "")) if sha else "unknown",
    }


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str | None:
    """The CPU's model name (Linux /proc/cpuinfo; else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def hardware() -> dict:
    """Where a run ran. `cpu` and `cpu_capability` (the instruction set torch's kernels use) tell why the same
    seed gives other weights on another machine: other vector widths sum floats in another order."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # torch missing or CUDA query failed: record what we have
        info["cuda"] = []
    return info


def run_manifest(*, seed: int, model_alias: str, model_dir: str | Path | None = None) -> dict:
    from sdar.models import MODELS, model_revision

    revision = None
    if model_dir is not None and Path(model_dir).exists():
        revision = model_revision(model_dir)
    return {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "packages": package_versions(),
        "hardware": hardware(),
        "seed": seed,
        "model": {
            "alias": model_alias,
            "kind": MODELS[model_alias].kind,
            "dir": str(model_dir) if model_dir else None,
            "revision": revision,
        },
        "argv": sys.argv,
    }

"""GPU checks and figures: the code paths the project's CPU machines cannot exercise.

Run on a CUDA machine from the repository root: `python benchmarks/gpu_check.py --out DIR [--skip-big]`.
Writes `DIR/gpu_check.json` and prints one JSON line per section.

1. `pipeline`: the real cell on the GPU. tiny-qwen3 is built from a WebShop expert corpus, then
   `sdar-bench train` (smoke profile, SDAR, 3 steps: rollout, teacher, update, checkpoint) and `sdar-bench
   evaluate` run on `cuda`; reports the trainer's device line, step timings, peak GPU memory and eval.json.
2. `generation`: rollout generation tokens/s of the transformers backend on the GPU and on the CPU (same tiny
   model, same WebShop prompts); vLLM's figure is added when `vllm` is importable.
3. `peak_memory`: one training step (forward + backward + AdamW, bf16 autocast, fp32 master weights) of the
   paper models' architectures with random weights (dimensions from their public config.json), batch 2 x 1024
   tokens: peak GPU memory and step time. No weights are downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Public config.json dimensions of the paper's models (Qwen/Qwen3-1.7B, Qwen/Qwen2.5-3B-Instruct, -7B-Instruct).
PAPER_ARCHS = {
    "qwen3-1.7b": ("qwen3", dict(hidden_size=2048, num_hidden_layers=28, num_attention_heads=16,
                                 num_key_value_heads=8, head_dim=128, intermediate_size=6144,
                                 vocab_size=151936, tie_word_embeddings=True)),
    "qwen2.5-3b-instruct": ("qwen2", dict(hidden_size=2048, num_hidden_layers=36, num_attention_heads=16,
                                          num_key_value_heads=2, intermediate_size=11008, vocab_size=151936,
                                          tie_word_embeddings=True)),
    "qwen2.5-7b-instruct": ("qwen2", dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
                                          num_key_value_heads=4, intermediate_size=18944, vocab_size=152064,
                                          tie_word_embeddings=False)),
}  # fmt: skip


def webshop_corpus(cache: Path, episodes: int = 40) -> list[str]:
    """Expert WebShop episodes as text (prompts and replies): the tiny tokenizer's corpus."""
    from envs.base import Turn
    from envs.registry import make_suite
    from envs.webshop.config import WebshopConfig

    suite = make_suite("webshop", WebshopConfig(), cache_dir=cache)
    lines: list[str] = []
    for task_id in suite.panel("train").task_ids[:episodes]:
        env = suite.make_env()
        obs = env.reset(task_id)
        history: list[Turn] = []
        for turn in range(suite.max_turns):
            lines.append(suite.prompt(suite.task(task_id), history[-suite.history_length :], obs, turn))
            reply = suite.expert_action(env)
            lines.append(reply)
            res = env.step(reply)
            history.append(Turn(obs.text, res.info.get("action", reply)))
            obs = res.observation
            if res.done:
                break
    return lines


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "sdar.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)  # fmt: skip


def pipeline(work: Path, model_dir: Path, cache: Path) -> dict:
    out = work / "run"
    common = ["--set", f"paths.env_cache={cache}"]
    t0 = time.perf_counter()
    res = cli("train", "--method", "sdar", "--env", "webshop", "--model", "tiny-qwen3", "--seed", "0",
              "--out", str(out), "--model-dir", str(model_dir), "--profile", "smoke",
              "--set", "train.steps=3", *common)  # fmt: skip
    train_s = time.perf_counter() - t0
    result = {"train_rc": res.returncode, "train_s": round(train_s, 1),
              "trainer_log": [x for x in res.stderr.splitlines() if x.startswith(("device", "step"))]}  # fmt: skip
    if res.returncode != 0:
        result["stderr"] = res.stderr[-3000:]
        return result
    result["timings"] = [json.loads(x) for x in (out / "timings.jsonl").read_text().splitlines()]
    result["metrics_last"] = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    res = cli("evaluate", "--run", str(out), *common)
    result["evaluate_rc"] = res.returncode
    if res.returncode == 0:
        result["eval"] = {k: v for k, v in json.loads((out / "eval.json").read_text()).items()
                          if k in ("success_rate", "score", "panel_size", "temperature")}  # fmt: skip
    else:
        result["stderr"] = res.stderr[-3000:]
    return result


def generation(model_dir: Path, cache: Path, n_prompts: int = 64, new_tokens: int = 32) -> dict:
    from transformers import AutoModelForCausalLM

    from envs.registry import make_suite
    from envs.webshop.config import WebshopConfig
    from sdar.models import load_tokenizer
    from sdar.policy import HFPolicy

    suite = make_suite("webshop", WebshopConfig(), cache_dir=cache)
    tasks = suite.panel("eval").task_ids[:n_prompts]
    contents = [suite.prompt(suite.task(t), [], suite.make_env().reset(t), 0) for t in tasks]
    tokenizer = load_tokenizer(model_dir)
    out = {}
    for device in ("cuda", "cpu"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
        # min_new_tokens: every sequence generates exactly `new_tokens`, so tokens/s compare like for like
        model.generation_config.min_new_tokens = new_tokens
        policy = HFPolicy(
            model, tokenizer, max_prompt_tokens=2048, max_new_tokens=new_tokens, batch_size=n_prompts
        )
        policy.generate(contents[:4], temperature=1.0)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        gens = policy.generate(contents, temperature=1.0)
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        tokens = sum(len(g.response_ids) for g in gens)
        out[f"hf_{device}_tokens_per_s"] = round(tokens / dt)
        out[f"hf_{device}_tokens"] = tokens
    out["gpu_over_cpu"] = round(out["hf_cuda_tokens_per_s"] / out["hf_cpu_tokens_per_s"], 2)
    try:
        import vllm  # noqa: F401

        out["vllm"] = "importable (not measured by this script yet)"
    except ImportError:
        out["vllm"] = "not installed on this machine"
    return out


def peak_memory_one(alias: str, batch: int = 2, seq: int = 1024) -> dict:
    """One training step of `alias`'s architecture (random weights) in this process; memory after each stage."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, dims = PAPER_ARCHS[alias]
    gib = lambda: round(torch.cuda.max_memory_allocated() / 2**30, 1)  # noqa: E731
    cfg = AutoConfig.for_model(model_type, **dims)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="sdpa")
    stages = {"weights": gib()}
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01)
    ids = torch.randint(0, dims["vocab_size"], (batch, seq), device="cuda")
    times = []
    for _ in range(2):  # the first step allocates the optimizer state
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        stages["forward"] = gib()
        loss.backward()
        stages["backward"] = gib()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        stages["optimizer"] = gib()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"parameters": params, "peak_gib": gib(), "peak_after": stages, "step_s": round(times[-1], 3),
            "batch": f"{batch}x{seq}", "attention": "sdpa"}  # fmt: skip


def peak_memory() -> dict:
    """Each architecture in a fresh process, so one's memory (or an OOM) cannot leak into the next."""
    out = {}
    for alias in PAPER_ARCHS:
        res = subprocess.run([sys.executable, __file__, "--memory-alias", alias], capture_output=True, text=True,
                             timeout=600)  # fmt: skip
        lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
        out[alias] = json.loads(lines[-1]) if lines else {"error": res.stderr[-600:]}
    return out


def main() -> None:
    from sdar import configlib, models

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--skip-big", action="store_true", help="skip the paper-architecture memory section")
    ap.add_argument("--memory-alias", choices=list(PAPER_ARCHS), help="(internal) one architecture's step")
    ap.add_argument("--only-memory", action="store_true", help="run only the peak-memory section")
    args, _ = ap.parse_known_args()
    if args.memory_alias:
        try:
            print(json.dumps(peak_memory_one(args.memory_alias)))
        except torch.OutOfMemoryError as err:
            print(json.dumps({"oom": str(err).splitlines()[0][:300]}))
        return
    assert torch.cuda.is_available(), "this script needs a CUDA GPU"
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "sdar_gpu_check"
    cache, model_dir = work / "envs", work / "model"
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import transformers

    report["transformers"] = transformers.__version__
    t0 = time.perf_counter()
    if not args.only_memory:
        corpus = webshop_corpus(cache)
        models.build("tiny-qwen3", model_dir, configlib.build(models.ModelsConfig), corpus=corpus)
        report["build_s"] = round(time.perf_counter() - t0, 1)
    sections = [("pipeline", lambda: pipeline(work, model_dir, cache)),
                ("generation", lambda: generation(model_dir, cache))]  # fmt: skip
    if args.only_memory:
        sections = []
    if not args.skip_big:
        sections.append(("peak_memory", peak_memory))
    for name, fn in sections:
        try:
            report[name] = fn()
        except Exception as err:  # report and go on: one failing section must not hide the others
            report[name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
        print(json.dumps({name: report[name]}), flush=True)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Reliability rules (DESIGN.md §11) beyond tests/test_train.py (which covers SIGKILL resume, same-seed
determinism and the NaN stop's state.pt) and tests/test_config.py (configlib's messages):

- a real `sdar-bench serve-retriever` killed mid-rollout of a real Search-QA training cell (http retriever):
  restarted, the client retries with backoff and the cell finishes; left down, a clear error (exit 3, the URL)
  and no partial results;
- interrupted writes (serializer error, failed write, failed rename, SIGKILL mid-write; a checkpoint save that
  fails half-way) leave the previous file intact and no partial result file;
- after a NaN stop the last checkpoint is byte-identical, loadable, and the cell resumes from it;
- malformed configs and missing data paths fail through `sdar-bench train` with exit 2 and one line naming the
  key, the value and the choices, before the run directory is written.

The Search-QA cells use a 1-layer tiny-qwen3 fine-tuned in a few seconds to always reply
`<search>capital</search>`, so every turn of every episode calls the retriever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from sdar import cli

SEARCH = "<search>capital</search>"
PY = [sys.executable, "-m", "sdar.cli"]


# ----------------------------------------------------------------------------------------------------------
# fixtures: a tiny model that always searches, and the generated Search-QA data it plays on


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from envs.base import Turn
    from envs.search_qa import SearchQAConfig, SearchQASuite
    from sdar import configlib, models
    from sdar.models import load_tokenizer
    from sdar.policy import encode_prompts, sequence_logprobs

    root = tmp_path_factory.mktemp("rel")
    cache = root / "envs"
    suite = SearchQASuite(SearchQAConfig(), cache / "search_qa")  # what the smoke cells build: same data
    prompts = []
    for tid in suite.panel("train").task_ids[:2]:
        env, task = suite.make_env(), suite.task(tid)
        obs = env.reset(tid)
        prompts.append(suite.prompt(task, [], obs, 0))
        prompts.append(suite.prompt(task, [Turn(obs.text, SEARCH)], env.step(SEARCH).observation, 1))
    cfg = configlib.build(
        models.ModelsConfig, {"tiny_qwen3": {"num_layers": 1, "hidden_size": 64, "intermediate_size": 128}}
    )
    models.build("tiny-qwen3", root / "model", cfg, corpus=prompts + [SEARCH] * 20)
    tok = load_tokenizer(root / "model")
    model = AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32)
    ids = encode_prompts(tok, prompts, 512)
    reply = tok(SEARCH, add_special_tokens=False).input_ids + [tok.eos_token_id]
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(30):
        logp, mask, _ = sequence_logprobs(model, ids, [reply] * len(ids), tok.pad_token_id)
        loss = -logp.sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    model.save_pretrained(root / "model")
    return root, cache, cache / "search_qa" / "corpus.jsonl"


def train_args(searcher, out, *extra, steps=2, env="search_qa"):
    root, cache, _ = searcher
    return ["train", "--method", "grpo", "--env", env, "--model", "tiny-qwen3", "--seed", "0", "--out", str(out),
            "--model-dir", str(root / "model"), "--profile", "smoke", "--set", f"paths.env_cache={cache}",
            "--set", f"train.steps={steps}", "--set", "train.eval_every=0", "--set", "train.checkpoint_every=1",
            *extra]  # fmt: skip


def http_args(port, retries, backoff):
    url = f"http://127.0.0.1:{port}/retrieve"
    return ["--set", "envs.search_qa.retriever=http", "--set", f"envs.search_qa.retriever_url={url}",
            "--set", f"envs.search_qa.http_retries={retries}", "--set", f"envs.search_qa.http_backoff_s={backoff}",
            "--set", "envs.search_qa.http_timeout_s=5", "--set", "envs.search_qa.max_turns=4"]  # fmt: skip


def wait_for(cond, what, timeout=240.0, proc=None):
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc={proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Server:
    """`sdar-bench serve-retriever` in a subprocess; a thread collects its log (uvicorn's access lines)."""

    def __init__(self, corpus: Path, port: int):
        self.corpus, self.port, self.lines = corpus, port, []

    def start(self) -> Server:
        cmd = [*PY, "serve-retriever", "--corpus", str(self.corpus), "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

        def up():
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "the retrieval server", 60, self.proc)
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def posts(self) -> int:
        return sum("POST /retrieve" in line for line in list(self.lines))

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def start_training(args, tmp_path) -> tuple[subprocess.Popen, Path]:
    err = tmp_path / "train.stderr"
    with err.open("w") as f:
        proc = subprocess.Popen([*PY, *args], stdout=subprocess.DEVNULL, stderr=f)
    return proc, err


def kill_mid_rollout_of_step_1(srv: Server, proc, out: Path) -> dict[str, bytes]:
    """Once step 0's checkpoint exists, wait for step 1's rollout to search, then SIGKILL the server.
    Returns the files of step 0's checkpoint (read before the kill)."""
    wait_for(lambda: (out / "checkpoint" / "state.pt").is_file(), "step 0's checkpoint", proc=proc)
    snapshot = {p.name: p.read_bytes() for p in (out / "checkpoint").rglob("*") if p.is_file()}
    snapshot["metrics.jsonl"] = (out / "metrics.jsonl").read_bytes()
    seen = srv.posts()
    wait_for(lambda: srv.posts() > seen, "a search of step 1", proc=proc)
    srv.kill()
    return snapshot


# ----------------------------------------------------------------------------------------------------------
# retrieval server killed mid-rollout


def test_retrieval_server_restarted_mid_rollout_the_cell_finishes(searcher, tmp_path):
    from envs.search_qa.server import free_port

    port, out = free_port(), tmp_path / "run"
    srv = Server(searcher[2], port).start()
    proc, err = start_training(train_args(searcher, out, *http_args(port, retries=8, backoff=0.1)), tmp_path)
    try:
        kill_mid_rollout_of_step_1(srv, proc, out)
        time.sleep(0.3)  # down for a while: the rollout's next searches fail and back off
        srv = Server(searcher[2], port).start()
        assert proc.wait(timeout=300) == 0, err.read_text()[-3000:]
    finally:
        proc.kill()
        srv.kill()
    log = err.read_text()
    delays = [float(x.split("retrying in ")[1].rstrip("s")) for x in log.splitlines() if "retrying in" in x]
    # exponential backoff: every failed request's retries wait 0.1 s, 0.2 s, 0.4 s, ...
    assert delays and all(d == 0.1 or d == 2 * prev for prev, d in zip([0.0, *delays], delays)), log[-2000:]
    assert f"retrieval server http://127.0.0.1:{port}/retrieve: attempt 1/9 failed" in log
    assert srv.posts() > 0  # the restarted server answered the rest of the rollout
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [0, 1] and lines[1]["rollout/valid_action_ratio"] > 0.5
    assert torch.load(out / "checkpoint" / "state.pt", weights_only=False)["step"] == 2


def test_retrieval_server_left_down_fails_clearly_without_partial_results(searcher, tmp_path):
    from envs.search_qa.server import free_port

    port, out = free_port(), tmp_path / "run"
    url = f"http://127.0.0.1:{port}/retrieve"
    srv = Server(searcher[2], port).start()
    proc, err = start_training(train_args(searcher, out, *http_args(port, retries=2, backoff=0.05)), tmp_path)
    try:
        before = kill_mid_rollout_of_step_1(srv, proc, out)
        rc = proc.wait(timeout=300)
    finally:
        proc.kill()
        srv.kill()
    log = err.read_text().strip().splitlines()
    assert rc == 3, "\n".join(log[-30:])
    assert log[-1].startswith(f"sdar-bench: error: retrieval server {url} failed 3 attempts (last: ")
    assert "serve-retriever" in log[-1] and not any(x.startswith("Traceback") for x in log)
    # no partial results: step 0's metrics line only, step 0's checkpoint byte for byte, no eval, no temp dir
    assert (out / "metrics.jsonl").read_bytes() == before.pop("metrics.jsonl")
    after = {p.name: p.read_bytes() for p in (out / "checkpoint").rglob("*") if p.is_file()}
    assert after == before and torch.load(out / "checkpoint" / "state.pt", weights_only=False)["step"] == 1
    assert not (out / "eval.json").exists() and not (out / "checkpoint.tmp").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint", "config.resolved.yaml", "init_model.txt", "metrics.jsonl", "run.json", "timings.jsonl"
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# interrupted writes


def test_atomic_write_failures_keep_the_previous_file(tmp_path, monkeypatch):
    from sdar.atomic import atomic_write_json, atomic_write_text

    path = tmp_path / "eval.json"
    atomic_write_json(path, {"success_rate": 0.5})
    old = path.read_bytes()

    with pytest.raises(TypeError):  # the serializer fails: nothing is opened
        atomic_write_json(path, {"success_rate": object()})

    real_fdopen = os.fdopen

    class HalfWrite:  # the disk fills up half-way through the write
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", lambda fd, mode="r": HalfWrite(real_fdopen(fd, mode)))
        with pytest.raises(OSError, match="No space left"):
            atomic_write_text(path, "x" * 100_000)

    def no_replace(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    with monkeypatch.context() as m:
        m.setattr(os, "replace", no_replace)
        with pytest.raises(PermissionError):
            atomic_write_json(path, {"success_rate": 1.0})
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no temp left


CHILD = """
import os, sys, time
real = os.fdopen
class SlowDisk:  # writes 64 KiB chunks, flushed, with a pause: the parent kills us half-way
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()
    def write(self, text):
        for i in range(0, len(text), 1 << 16):
            self.f.write(text[i : i + (1 << 16)]); self.f.flush(); time.sleep(0.002)
os.fdopen = lambda fd, mode="r": SlowDisk(real(fd, mode))
from sdar.atomic import atomic_write_json
atomic_write_json(sys.argv[1], {"rows": ["y" * 1000] * 16_000})
"""


def test_sigkill_mid_write_of_a_large_file_keeps_the_previous_file(tmp_path):
    from sdar.atomic import atomic_write_json

    path = tmp_path / "results.json"
    atomic_write_json(path, {"rows": ["old"]})
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)])

    def half_written():
        try:
            return any(p.stat().st_size > 1 << 20 for p in tmp_path.iterdir() if p.name != path.name)
        except FileNotFoundError:
            return False

    try:
        wait_for(half_written, "the temp file to fill", 120, proc)
    finally:
        proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert json.loads(path.read_text()) == {"rows": ["old"]}  # readers see the old, complete file
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != path.name]
    assert len(leftovers) == 1 and leftovers[0].startswith(".results.json.") and leftovers[0].endswith(".tmp")
    assert 1 << 20 < (tmp_path / leftovers[0]).stat().st_size < 16_000 * 1000  # killed mid-write
    atomic_write_json(path, {"rows": ["new"]})  # a stale temp file does not get in the way
    assert json.loads(path.read_text()) == {"rows": ["new"]}


def test_checkpoint_save_failing_half_way_keeps_the_last_checkpoint(searcher, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from sdar import trainer
    from sdar.models import load_tokenizer

    root = searcher[0]
    model = AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
    kw = dict(model=model, tokenizer=load_tokenizer(root / "model"), optimizer=opt, scheduler=sched)
    trainer.save_checkpoint(tmp_path / "checkpoint", step=1, metrics_lines=1, **kw)
    files = {
        p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "checkpoint").rglob("*") if p.is_file()
    }
    with torch.no_grad():
        next(model.parameters()).add_(1.0)

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:  # the state file fails after the new weights were written
        m.setattr(trainer.torch, "save", full_disk)
        with pytest.raises(OSError):
            trainer.save_checkpoint(tmp_path / "checkpoint", step=2, metrics_lines=2, **kw)
    assert trainer.latest_checkpoint(tmp_path) == tmp_path / "checkpoint"
    now = {
        p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "checkpoint").rglob("*") if p.is_file()
    }
    assert now == files

    real_rename, calls = Path.rename, []

    def crash_on_second_rename(self, target):
        calls.append(target)
        if len(calls) == 2:  # after checkpoint -> checkpoint.old, before checkpoint.tmp -> checkpoint
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    with monkeypatch.context() as m:
        m.setattr(Path, "rename", crash_on_second_rename)
        with pytest.raises(OSError):
            trainer.save_checkpoint(tmp_path / "checkpoint", step=2, metrics_lines=2, **kw)
    ckpt = trainer.latest_checkpoint(tmp_path)
    assert ckpt == tmp_path / "checkpoint.old"  # the previous complete checkpoint, found by a resume
    assert torch.load(ckpt / "state.pt", weights_only=False)["step"] == 1
    AutoModelForCausalLM.from_pretrained(ckpt / "model")


# ----------------------------------------------------------------------------------------------------------
# NaN stop: the checkpoint before the NaN step is intact, loadable, and the cell resumes from it


def test_nan_stop_keeps_a_loadable_checkpoint_and_resume_continues(searcher, tmp_path, capsys):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    out = tmp_path / "nan"
    assert cli.main(train_args(searcher, out, steps=1)) == 0
    before = {p.relative_to(out): p.read_bytes() for p in (out / "checkpoint").rglob("*") if p.is_file()}
    metrics = (out / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert cli.main(train_args(searcher, out, "--set", "objective.entropy_coef=.nan", steps=3)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sdar-bench: error: non-finite loss (nan) at step 1 (grpo/search_qa)")
    assert (out / "metrics.jsonl").read_text() == metrics  # no line for the failed step
    after = {p.relative_to(out): p.read_bytes() for p in (out / "checkpoint").rglob("*") if p.is_file()}
    assert after == before and not (out / "checkpoint.tmp").exists()
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoint" / "model", dtype=torch.float32)
    saved = load_file(str(out / "checkpoint" / "model" / "model.safetensors"))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in saved.items() if k in model.state_dict())
    assert cli.main(train_args(searcher, out, steps=2)) == 0  # the NaN setting removed: resumes at step 1
    assert "resumed from" in capsys.readouterr().err
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert lines[0] == metrics.strip() and json.loads(lines[1])["step"] == 1 and len(lines) == 2


# ----------------------------------------------------------------------------------------------------------
# malformed configs and missing data: exit 2, one line, before the run directory is written


def _yaml(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return str(p)


BAD = {
    "unknown key": (
        ["--set", "train.lrr=0.1"],
        ["unknown config key train.lrr", "valid keys under train:", " lr,"],
    ),
    "unknown key in a file": (
        ["--config", "{yaml}"],
        ["unknown config key envs.webshop.max_turn;", "max_turns"],
        "envs: {webshop: {max_turn: 3}}",
    ),
    "wrong type": (["--set", "train.steps=two"], ["train.steps: expected an integer, got 'two'"]),
    "wrong type in a file": (
        ["--config", "{yaml}"],
        ["train.lr: expected a number, got [0.1]"],
        "train: {lr: [0.1]}",
    ),
    "bad choice": (["--set", "objective.agg=mean"], ["objective.agg: 'mean'", "valid choices: 'token-mean'"]),
    "unknown model": (
        ["--model", "gpt-9"],
        ["unknown model alias 'gpt-9'; valid choices: tiny-qwen2.5, tiny-qwen3"],
    ),
    "missing model dir": (["--model-dir", "{tmp}/none"], ["--model-dir {tmp}/none: no config.json"]),
    "alfworld data dir": (
        ["--env", "alfworld", "--set", "envs.alfworld.data_path={tmp}/alfworld"],
        ["envs.alfworld.data_path='{tmp}/alfworld'", "no json_2.1.1/ directory", "alfworld-download"],
    ),
    "alfworld real without data": (
        ["--env", "alfworld", "--set", "envs.alfworld.source=real"],
        ["envs.alfworld.source='real'", "needs the game files", "ALFWORLD_DATA", "alfworld-download"],
    ),
    "alfworld split": (
        ["--env", "alfworld", "--set", "envs.alfworld.data_path={tmp}/data"],
        ["envs.alfworld.eval_split: split 'valid_seen' not found", "valid choices: train"],
    ),
    "webshop product file": (
        [
            "--env",
            "webshop",
            "--set",
            "envs.webshop.product_file={tmp}/items_shuffle_1000.json",
            "--set",
            "envs.webshop.attr_file={tmp}/items_ins_v2_1000.json",
        ],
        ["envs.webshop.product_file: file not found: {tmp}/items_shuffle_1000.json", "setup.sh", "generated"],
    ),
    "webshop real without data": (
        ["--env", "webshop", "--set", "envs.webshop.source=real"],
        ["envs.webshop.source='real' needs envs.webshop.product_file and envs.webshop.attr_file", "setup.sh"],
    ),
    "qa real without data": (
        ["--set", "envs.search_qa.source=real"],
        ["envs.search_qa.source='real' needs envs.search_qa.eval_files", "huggingface-cli download"],
    ),
    "qa parquet": (
        ["--set", "envs.search_qa.eval_files=[{tmp}/nq/test.parquet]"],
        ["envs.search_qa.eval_files: file not found: {tmp}/nq/test.parquet", "huggingface-cli download"],
    ),
    "qa corpus": (
        ["--set", "envs.search_qa.corpus_path={tmp}/wiki-18.jsonl"],
        ["envs.search_qa.corpus_path: file not found: {tmp}/wiki-18.jsonl", "wiki-18-corpus"],
    ),
    "qa corpus with generated questions": (
        [
            "--set",
            "envs.search_qa.source=generated",
            "--set",
            "envs.search_qa.corpus_path={tmp}/wiki-18.jsonl",
        ],
        ["envs.search_qa.corpus_path: file not found: {tmp}/wiki-18.jsonl"],
    ),
    "qa server down": (
        [
            "--set",
            "envs.search_qa.retriever=http",
            "--set",
            "envs.search_qa.retriever_url=http://127.0.0.1:{port}/retrieve",
        ],
        [
            "envs.search_qa.retriever_url: no retrieval server answers at http://127.0.0.1:{port}/retrieve",
            "serve-retriever",
        ],
    ),
    "qa train without eval": (
        ["--set", "envs.search_qa.train_files=[{tmp}/train.parquet]"],
        ["envs.search_qa.train_files is set but envs.search_qa.eval_files is not"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_or_missing_data_fails_before_any_work(searcher, tmp_path, capsys, monkeypatch, case):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    (tmp_path / "data" / "json_2.1.1" / "train").mkdir(parents=True)
    flags, needles, *text = BAD[case]
    from envs.search_qa.server import free_port

    fill = {"tmp": str(tmp_path), "yaml": _yaml(tmp_path, text[0]) if text else "", "port": free_port()}
    out = tmp_path / "run"
    capsys.readouterr()
    rc = cli.main(train_args(searcher, out, *[f.format(**fill) for f in flags]))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("sdar-bench: error: "), err
    for needle in needles:
        assert needle.format(**fill) in err[0], err[0]
    assert not out.exists()  # nothing written: no metrics.jsonl, no checkpoint, no run files


def test_missing_data_through_the_installed_command(searcher, tmp_path):
    from envs.search_qa.data import HOW_TO_GET

    exe = Path(sys.executable).with_name("sdar-bench")
    out = tmp_path / "run"
    args = train_args(searcher, out, "--set", f"envs.search_qa.eval_files=[{tmp_path}/test.parquet]")
    res = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"sdar-bench: error: envs.search_qa.eval_files: file not found: {tmp_path}/test.parquet. {HOW_TO_GET}"
    ]
    assert not out.exists()

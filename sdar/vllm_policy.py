"""vLLM generation backend (DESIGN.md §5, §9): the same `generate` / `sync_weights` / `encode` contract as
`HFPolicy`, with rollouts served by a colocated `vllm.LLM` that mirrors the live torch model.

What it does
- Builds one in-process engine on the training GPU, the way TRL 1.16's GRPOTrainer does in colocate mode
  (trl/generation/vllm_generation.py): `distributed_executor_backend="external_launcher"` so the engine
  runs in this process, a fixed seed (required by that backend), `gpu_memory_utilization` and
  `enable_sleep_mode` from explicit arguments (0.5 and off by default, as PROTOCOL.md §7 advises), the
  model's dtype, prefix caching on.
- `generate`: prompts are encoded by `sdar.policy.encode_prompts` (the HFPolicy encoding), passed as
  `{"prompt_token_ids": ...}`; greedy when temperature == 0; stops at the tokenizer's eos only; returns
  the same `Generation` objects (eos kept in the response ids, text decoded here without special tokens).
- `sync_weights`: pushes every parameter of the live model into the engine's model with
  `llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights([(name, tensor)])`, then
  `llm.reset_prefix_cache()` — TRL's colocate path. With sleep mode, it wakes the weights first; the KV
  cache is woken for each `generate` and both are released (sleep level 2) after it, as TRL does.

Departures
- `skip_tokenizer_init=True` and `generation_config="vllm"`: the engine sees token ids only, and stops
  only at `stop_token_ids=[tokenizer.eos_token_id]`, like HFPolicy (which overrides the model's eos list
  with the tokenizer's). Text is decoded with our tokenizer, not vLLM's, so both backends decode alike.
- Sampled requests get per-request seeds drawn from torch's global RNG, which the trainer seeds per step:
  sampling depends on (run seed, step), not on how vLLM schedules the batch.
- Single process, single GPU, unwrapped (non-FSDP) model; scoring never uses vLLM.
- TRL 1.16 declares vLLM 0.22–0.31 supported; this project pins 0.33. The attribute path used for the
  weight push is the one TRL uses; it is the first thing to check when vLLM is upgraded.

What was run: vLLM cannot be installed on the CPU machine this was written on, so only the pure parts
(sampling mapping, response finishing, the missing-vLLM error) were run there. The engine path is
exercised by tests/test_vllm_policy.py on a CUDA machine with `pip install -e .[gpu]`:
`pytest tests/test_vllm_policy.py -v`.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import torch

from sdar.policy import Generation, encode_prompts

INSTALL_HINT = "pip install -e .[gpu]"


def sampling_kwargs(temperature: float, top_p: float, max_new_tokens: int, eos_token_id: int,
                    seed: int | None = None) -> dict:  # fmt: skip
    """`vllm.SamplingParams` keyword arguments for one request (pure: testable without vLLM).

    temperature == 0 is greedy (vLLM ignores top_p/top_k then; they are set to their neutral values).
    `top_k=0` disables top-k ("Set to 0 (or -1) to consider all tokens", vllm/sampling_params.py), as
    HFPolicy's `top_k=0` does in transformers.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    greedy = temperature == 0
    return dict(
        n=1,
        temperature=0.0 if greedy else float(temperature),
        top_p=1.0 if greedy else float(top_p),
        top_k=0,
        min_p=0.0,
        repetition_penalty=1.0,
        max_tokens=int(max_new_tokens),
        stop_token_ids=[int(eos_token_id)],
        seed=None if greedy else seed,
        logprobs=None,  # scoring runs on the torch model (policy.sequence_logprobs)
        detokenize=False,  # decoded with our tokenizer in `finish`
    )


def finish(tokenizer, prompt_ids: list[int], token_ids: list[int]) -> Generation:
    """A `Generation` from generated ids: cut after the first eos (kept), decode without special tokens."""
    eos = tokenizer.eos_token_id
    resp = list(token_ids)
    if eos in resp:
        resp = resp[: resp.index(eos) + 1]
    return Generation(tuple(prompt_ids), tuple(resp), tokenizer.decode(resp, skip_special_tokens=True))


def import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            "the vLLM generation backend needs vLLM, which is not installed. On a CUDA machine run "
            f"`{INSTALL_HINT}` (vLLM brings its own CUDA torch), or use the transformers backend "
            "(`backend: hf`), which runs everywhere."
        ) from err
    return vllm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _vllm_name(name: str) -> str:
    """Parameter name as vLLM's `load_weights` expects it (activation-checkpoint wrappers removed)."""
    return name.replace("_checkpoint_wrapped_module.", "")


class VLLMPolicy:
    """Colocated vLLM generation that mirrors the live torch model (push with `sync_weights`)."""

    def __init__(self, model, tokenizer, *, max_prompt_tokens: int, max_new_tokens: int, batch_size: int = 64,
                 enable_thinking: bool | None = False, gpu_memory_utilization: float = 0.5,
                 enable_sleep_mode: bool = False, seed: int = 0, **llm_kwargs):  # fmt: skip
        vllm = import_vllm()  # first, so a missing vLLM fails before any work
        self.model = model
        self.tokenizer = tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.enable_thinking = enable_thinking
        self.enable_sleep_mode = enable_sleep_mode
        self._sampling_params_cls = vllm.SamplingParams

        src = Path(str(getattr(model, "name_or_path", "") or ""))
        self._tmp = None
        if not (src.is_dir() and (src / "config.json").is_file()):
            self._tmp = tempfile.TemporaryDirectory(prefix="sdar-vllm-")
            src = Path(self._tmp.name)
            model.save_pretrained(src)
            tokenizer.save_pretrained(src)
        # external_launcher: torch.distributed-style rendezvous in this process (single rank by default).
        for key, value in (
            ("RANK", "0"),
            ("LOCAL_RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("MASTER_ADDR", "localhost"),
        ):
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        engine_kwargs = dict(
            model=str(src),
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=enable_sleep_mode,
            enable_prefix_caching=True,
            max_model_len=max_prompt_tokens + max_new_tokens,
            max_num_seqs=batch_size,
            max_num_batched_tokens=max(4096, max_prompt_tokens + max_new_tokens),
            distributed_executor_backend="external_launcher",
            skip_tokenizer_init=True,
            generation_config="vllm",
        )
        engine_kwargs.update(llm_kwargs)
        self.llm = vllm.LLM(**engine_kwargs)
        if enable_sleep_mode:
            self.llm.sleep(level=2)  # weights and KV cache released until the first generate
            self._weights_sleeping = True
        else:
            self._weights_sleeping = False
            self.sync_weights()  # the checkpoint on disk may be older than the live model

    def encode(self, contents: list[str]) -> list[list[int]]:
        return encode_prompts(
            self.tokenizer, contents, self.max_prompt_tokens, enable_thinking=self.enable_thinking
        )

    def _engine_model(self):
        return self.llm.llm_engine.model_executor.driver_worker.model_runner.model

    @torch.no_grad()
    def sync_weights(self) -> None:
        """Push the live model's parameters into the engine and drop KV blocks computed with the old ones."""
        if self.enable_sleep_mode:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.llm.wake_up(tags=["weights"])
            self._weights_sleeping = False
        target = self._engine_model()
        for name, param in self.model.named_parameters():
            target.load_weights([(_vllm_name(name), param.data)])
        self.llm.reset_prefix_cache()

    def generate(
        self, contents: list[str], *, temperature: float, top_p: float = 1.0, groups: list | None = None
    ) -> list[Generation]:
        """`groups` is accepted for the interface and unused: vLLM's automatic prefix caching shares heads."""
        prompt_ids = self.encode(contents)
        if not prompt_ids:
            return []
        eos = self.tokenizer.eos_token_id
        if temperature == 0:
            params = self._sampling_params_cls(**sampling_kwargs(0.0, 1.0, self.max_new_tokens, eos))
        else:  # per-request seeds from torch's RNG (seeded per step by the trainer)
            base = int(torch.randint(0, 2**31 - 1 - len(prompt_ids), (1,)).item())
            params = [
                self._sampling_params_cls(
                    **sampling_kwargs(temperature, top_p, self.max_new_tokens, eos, base + i)
                )
                for i in range(len(prompt_ids))
            ]
        if self.enable_sleep_mode:
            if self._weights_sleeping:  # level-2 sleep discarded the weights: push them again
                self.sync_weights()
            self.llm.wake_up(tags=["kv_cache"])
        outputs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompt_ids], sampling_params=params, use_tqdm=False
        )
        if self.enable_sleep_mode:
            self.llm.sleep(level=2)
            self._weights_sleeping = True
        return [finish(self.tokenizer, p, o.outputs[0].token_ids) for p, o in zip(prompt_ids, outputs)]

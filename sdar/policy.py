"""Policy backends behind one interface (DESIGN.md §5): generate text for a batch of prompts, and score
response tokens under a prompt (log-probs, optionally entropies).

- `HFPolicy`: transformers `generate` with a KV cache and left padding; runs on CPU and GPU.
- `VLLMPolicy` (sdar/vllm_policy.py): vLLM generation with weight sync after each update (GPU extra).

Scoring (`sequence_logprobs`) is backend independent: it always runs the trainable torch model, because the
loss needs gradients and the teacher/old/reference log-probs must come from the same numerics.
Prompts are user-message contents; the chat template is applied here, and prompt token ids are
left-truncated to `max_prompt_tokens` (PROTOCOL.md §1.2, `truncation=left`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Generation:
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]  # generated tokens, including the closing eos if one was produced
    text: str  # decoded response without special tokens


def chat_prompt(tokenizer, content: str, *, enable_thinking: bool | None = False) -> str:
    """Wrap one user message with the chat template and the generation prompt (no system prompt)."""
    kwargs = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True, **kwargs
    )


def encode_left_truncated(tokenizer, texts: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of already-templated texts, keeping the last `max_tokens` of each."""
    ids = tokenizer(texts, add_special_tokens=False).input_ids
    return [x[-max_tokens:] for x in ids]


def encode_prompts(tokenizer, contents: list[str], max_tokens: int, *, enable_thinking: bool | None = False):
    """Prompt token ids of user-message contents: chat template, then left truncation to `max_tokens`.

    Shared by every generation backend so they see identical prompts.
    """
    texts = [chat_prompt(tokenizer, c, enable_thinking=enable_thinking) for c in contents]
    return encode_left_truncated(tokenizer, texts, max_tokens)


# ----------------------------------------------------------------------------------------------------------
# scoring


def pad_pairs(prompts: list[list[int]], responses: list[list[int]], pad_id: int):
    """Left-pad prompts to P and right-pad responses to T.

    Returns input_ids (B, P+T), attention_mask (B, P+T), position_ids (B, P+T), response_mask (B, T) and P.
    """
    B = len(prompts)
    P = max(len(p) for p in prompts)
    T = max(1, max(len(r) for r in responses))
    input_ids = torch.full((B, P + T), pad_id, dtype=torch.long)
    attn = torch.zeros((B, P + T), dtype=torch.long)
    resp_mask = torch.zeros((B, T), dtype=torch.float32)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        input_ids[i, P - len(p) : P] = torch.tensor(p, dtype=torch.long)
        attn[i, P - len(p) : P] = 1
        if r:
            input_ids[i, P : P + len(r)] = torch.tensor(r, dtype=torch.long)
            attn[i, P : P + len(r)] = 1
            resp_mask[i, : len(r)] = 1.0
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # same positions as generation with left padding
    return input_ids, attn, position_ids, resp_mask, P


def sequence_logprobs(
    model,
    prompts: list[list[int]],
    responses: list[list[int]],
    pad_id: int,
    *,
    with_entropy: bool = False,
    temperature: float = 1.0,
    prefix: tuple | None = None,
    prefix_rows: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """log π(y_t | prompt, y_<t) for every response token.

    `prefix` (from `prefix_cache`) holds the keys/values of G prefixes; row b's prompt continues prefix
    `prefix_rows[b]`. The result equals scoring prefix + prompt in full, without recomputing the prefixes.

    Returns logp (B, T), response mask (B, T) with 1 on real response tokens, and the per-token entropy of
    the full next-token distribution (B, T) when `with_entropy`. Gradients flow when grad mode is on.
    """
    device = next(model.parameters()).device
    input_ids, attn, pos, mask, P = pad_pairs(prompts, responses, pad_id)
    T = mask.shape[1]
    kwargs = {"use_cache": False}
    if prefix is not None:  # each row continues one of the cached (left-padded) prefixes
        cache, prefix_attn, prefix_len = prefix
        rows = torch.tensor(prefix_rows, dtype=torch.long)
        cache = _select_rows(cache, rows.to(device))
        attn = torch.cat([prefix_attn[rows], attn], dim=1)
        pos = pos + prefix_len[rows].unsqueeze(1)
        kwargs = {"use_cache": True, "past_key_values": cache}
    # Only the last T+1 positions (P-1 .. P+T-1) go through the LM head: prompt positions predict nothing we
    # score, and their (B, P, V) logits would dominate time and memory for long prompts and large vocabularies.
    out = model(
        input_ids=input_ids.to(device),
        attention_mask=attn.to(device),
        position_ids=pos.to(device),
        logits_to_keep=T + 1,
        **kwargs,
    )
    logits = out.logits[:, :T].float()  # (B, T, V): kept position t (= P-1+t) predicts response token t
    if temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, P : P + T].to(device)
    logsm = F.log_softmax(logits, dim=-1)
    logp = logsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        entropy = -(logsm.exp() * logsm).sum(-1)
    mask = mask.to(device)
    return logp * mask, mask, (entropy * mask if entropy is not None else None)


def _select_rows(cache, rows: torch.Tensor):
    """A new DynamicCache whose row b is row `rows[b]` of `cache` (a gather: gradients flow back to it)."""
    from transformers import DynamicCache

    return DynamicCache([(layer.keys[rows], layer.values[rows]) for layer in cache.layers])


def prefix_cache(model, prefixes: list[list[int]]) -> tuple:
    """Keys/values of G prefixes in one forward, left-padded to the longest: the `prefix` argument of
    `sequence_logprobs`, as (cache with batch G, attention mask (G, L), lengths (G,)).

    Runs in the caller's grad mode: under `torch.no_grad()` for scoring, with gradients in the update (each
    prefix's keys/values then receive the gradients of every row that continues it)."""
    device = next(model.parameters()).device
    L = max(map(len, prefixes))
    ids = torch.zeros((len(prefixes), L), dtype=torch.long)
    attn = torch.zeros((len(prefixes), L), dtype=torch.long)
    for g, p in enumerate(prefixes):
        ids[g, L - len(p) :] = torch.tensor(p, dtype=torch.long)
        attn[g, L - len(p) :] = 1
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids.to(device), attention_mask=attn.to(device), position_ids=pos.to(device),
                use_cache=True, logits_to_keep=1)  # fmt: skip
    return out.past_key_values, attn, attn.sum(-1)


@torch.no_grad()
def batched_logprobs(
    model, prompts, responses, pad_id, *, batch_size: int = 64, prefix: tuple | None = None,
    prefix_rows: list[int] | None = None,
) -> list[torch.Tensor]:  # fmt: skip
    """No-grad log-probs in chunks; returns one 1-D tensor per sample (its response length), in input order.

    Chunks are formed over samples sorted by prompt length, so left padding stays small (prompt lengths vary
    several-fold between turns and, for the teacher, between skill texts).
    """
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[torch.Tensor | None] = [None] * len(prompts)
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        logp, _, _ = sequence_logprobs(
            model, [prompts[i] for i in idx], [responses[i] for i in idx], pad_id, prefix=prefix,
            prefix_rows=[prefix_rows[i] for i in idx] if prefix is not None else None,
        )  # fmt: skip
        for j, i in enumerate(idx):
            out[i] = logp[j, : len(responses[i])].cpu()
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------
# shared prompt prefixes: the turns of one task repeat its head (instructions, task, skills for `*` students)

MIN_SHARED_PREFIX = 32
"""Shortest common head worth its own forward (tokens); shorter ones are scored in full. Measured on tiny-qwen3
(640 samples of 4 tasks, heads + ~100-token rests, benchmarks/README.md): a 20-token head saves nothing (0.97x
in scoring), 40 tokens 1.1x, a 300-token skill block 3.2x."""


def prefix_cuts(
    prompts: list[list[int]], groups: list, *, min_len: int = MIN_SHARED_PREFIX, singles: bool = False
) -> list[int]:
    """Per sample, how many leading prompt tokens all samples of its group share, less one: every sample keeps
    at least its last prompt token, whose position predicts the first response token. 0 where that is shorter
    than `min_len` tokens, and for a group of one sample unless `singles` (nothing to share; generation gives
    it a head anyway, so that its row joins the shared batch). A group is the G episodes of one task in a
    rollout (their `uid`)."""
    members: dict = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    cuts = [0] * len(prompts)
    for idx in members.values():
        first, n = prompts[idx[0]], min(len(prompts[i]) for i in idx)
        for i in idx[1:]:
            p = prompts[i]
            n = next((k for k in range(n) if p[k] != first[k]), n)
        cut = n - 1 if n - 1 >= min_len and (len(idx) > 1 or singles) else 0
        for i in idx:
            cuts[i] = cut
    return cuts


def _prefix_pieces(prompts, groups, cuts, subset):
    """The distinct prefixes of `subset`'s groups, each sample's row among them, and its continuation."""
    row: dict = {}
    prefixes, rows, rests = [], [], []
    for i in subset:
        if groups[i] not in row:
            row[groups[i]] = len(prefixes)
            prefixes.append(list(prompts[i][: cuts[i]]))
        rows.append(row[groups[i]])
        rests.append(list(prompts[i][cuts[i] :]))
    return prefixes, rows, rests


def shared_sequence_logprobs(
    model, prompts: list[list[int]], responses: list[list[int]], pad_id: int, groups: list, cuts: list[int],
    *, with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:  # fmt: skip
    """`sequence_logprobs` where sample i's first `cuts[i]` prompt tokens (from `prefix_cuts`) are computed once
    per group and continued by every sample of the group; samples with cut 0 take the full forward. Same
    results as `sequence_logprobs` on the full prompts (to float rounding), gradients included: a shared
    prefix's keys/values carry the summed gradient of every row that reads them.

    Returns logp (B, T), response mask (B, T) and entropy (B, T) or None, rows in input order, T the longest
    response.
    """
    shared = [i for i in range(len(prompts)) if cuts[i] > 0]
    full = [i for i in range(len(prompts)) if cuts[i] == 0]
    if not shared:
        return sequence_logprobs(model, prompts, responses, pad_id, with_entropy=with_entropy)
    prefixes, rows, rests = _prefix_pieces(prompts, groups, cuts, shared)
    pieces = [sequence_logprobs(model, rests, [responses[i] for i in shared], pad_id, with_entropy=with_entropy,
                                prefix=prefix_cache(model, prefixes), prefix_rows=rows)]  # fmt: skip
    order = list(shared)
    if full:
        pieces.append(sequence_logprobs(model, [prompts[i] for i in full], [responses[i] for i in full], pad_id,
                                        with_entropy=with_entropy))  # fmt: skip
        order += full
    T = max(p[0].shape[1] for p in pieces)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))

    def join(k):
        if pieces[0][k] is None:
            return None
        padded = torch.cat([F.pad(p[k], (0, T - p[k].shape[1])) for p in pieces])
        return padded[inverse.to(padded.device)]

    return join(0), join(1), join(2)


@torch.no_grad()
def shared_batched_logprobs(
    model, prompts, responses, pad_id, groups: list, cuts: list[int], *, batch_size: int = 64
) -> list[torch.Tensor]:
    """`batched_logprobs` (no grad, one 1-D tensor per sample) with each group's shared prefix computed once:
    all distinct prefixes in one forward, every sample with a cut scored on top of them."""
    shared = [i for i in range(len(prompts)) if cuts[i] > 0]
    full = [i for i in range(len(prompts)) if cuts[i] == 0]
    out: list[torch.Tensor | None] = [None] * len(prompts)
    if shared:
        prefixes, rows, rests = _prefix_pieces(prompts, groups, cuts, shared)
        scores = batched_logprobs(model, rests, [responses[i] for i in shared], pad_id, batch_size=batch_size,
                                  prefix=prefix_cache(model, prefixes), prefix_rows=rows)  # fmt: skip
        for i, lp in zip(shared, scores):
            out[i] = lp
    if full:
        scores = batched_logprobs(model, [prompts[i] for i in full], [responses[i] for i in full], pad_id,
                                  batch_size=batch_size)  # fmt: skip
        for i, lp in zip(full, scores):
            out[i] = lp
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------
# generation


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) ids and attention mask of `rows` left-padded to the longest."""
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, L - len(r) :] = torch.tensor(r, dtype=torch.long)
        attn[i, L - len(r) :] = 1
    return ids, attn


class HFPolicy:
    """transformers generation on the live training model (CPU or GPU)."""

    def __init__(self, model, tokenizer, *, max_prompt_tokens: int, max_new_tokens: int, batch_size: int = 64,
                 enable_thinking: bool | None = False, share_prefix: bool = True):  # fmt: skip
        self.model = model
        self.share_prefix = share_prefix
        self.tokenizer = tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.enable_thinking = enable_thinking
        self.pad_id = tokenizer.pad_token_id

    def encode(self, contents: list[str]) -> list[list[int]]:
        return encode_prompts(
            self.tokenizer, contents, self.max_prompt_tokens, enable_thinking=self.enable_thinking
        )

    @torch.no_grad()
    def generate(
        self, contents: list[str], *, temperature: float, top_p: float = 1.0, groups: list | None = None
    ) -> list[Generation]:
        """Sample one reply per prompt. `groups` (e.g. the rollout's task uids) lets prompts of one group share
        the keys/values of their common head (`share_prefix`): computed once, then HF `generate` continues it."""
        prompt_ids = self.encode(contents)
        out: list[Generation | None] = [None] * len(prompt_ids)
        for i in range(0, len(prompt_ids), self.batch_size):
            rows = list(range(i, min(i + self.batch_size, len(prompt_ids))))
            chunk = [prompt_ids[r] for r in rows]
            cuts = [0] * len(chunk)
            if (
                groups is not None
                and self.share_prefix
                and any(prefix_cuts(chunk, [groups[r] for r in rows]))
            ):
                # one worthwhile head: every row continues a cached head (a lone episode or a short head
                # included, which costs nothing extra), so the chunk stays one generate call
                cuts = prefix_cuts(chunk, [groups[r] for r in rows], min_len=1, singles=True)
            # rows with a cached head in one call, any others (a one-token prompt) in another
            for part in ([j for j, c in enumerate(cuts) if c], [j for j, c in enumerate(cuts) if not c]):
                if part:
                    gens = self._generate_ids([chunk[j] for j in part], temperature, top_p,
                                              [groups[rows[j]] for j in part] if groups else None, [cuts[j] for j in part])  # fmt: skip
                    for j, gen in zip(part, gens):
                        out[rows[j]] = gen
        return out  # type: ignore[return-value]

    def _generate_ids(self, prompts, temperature: float, top_p: float, groups, cuts) -> list[Generation]:
        """Generate for `prompts`; when every cut is > 0, each row continues its group's cached head."""
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        cache = None
        if all(cuts):  # the prompt is [head block | rest block], the head block's keys/values given as cache
            heads, rows, rests = _prefix_pieces(prompts, groups, cuts, list(range(len(prompts))))
            head_cache, head_attn, _ = prefix_cache(self.model, heads)
            rows_t = torch.tensor(rows, dtype=torch.long)
            cache = _select_rows(head_cache, rows_t.to(device))
            head_ids = torch.full(head_attn.shape, self.pad_id, dtype=torch.long)
            for g, h in enumerate(heads):
                head_ids[g, head_ids.shape[1] - len(h) :] = torch.tensor(h)
            ids, attn = _left_pad(rests, self.pad_id)
            input_ids = torch.cat([head_ids[rows_t], ids], dim=1)
            attn = torch.cat([head_attn.cpu()[rows_t], attn], dim=1)
        else:
            input_ids, attn = _left_pad(prompts, self.pad_id)
        P = input_ids.shape[1]
        # Explicit neutral values: a checkpoint's generation_config (e.g. Qwen's top_k / repetition_penalty)
        # must not change the protocol's sampling (T, top_p only), nor differ from the vLLM backend.
        sampling = (
            dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
            if temperature > 0
            else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
        )
        sampling["repetition_penalty"] = 1.0
        seqs = self.model.generate(
            input_ids=input_ids.to(device), attention_mask=attn.to(device), max_new_tokens=self.max_new_tokens,
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.pad_id, past_key_values=cache, **sampling,
        )  # fmt: skip
        self.model.train(was_training)
        gens = []
        eos = self.tokenizer.eos_token_id
        for p, row in zip(prompts, seqs[:, P:].tolist()):
            resp = (
                row[: row.index(eos) + 1] if eos in row else row
            )  # no eos: ran to max_new_tokens, no padding
            text = self.tokenizer.decode(resp, skip_special_tokens=True)
            gens.append(Generation(tuple(p), tuple(resp), text))
        return gens

    def sync_weights(self) -> None:
        """Generation runs on the live model: nothing to push."""


def make_policy(backend: str, model, tokenizer, tc) -> HFPolicy:
    """The generation backend named by `TrainConfig.backend` ("hf" or "vllm")."""
    kwargs = dict(
        max_prompt_tokens=tc.max_prompt_tokens,
        max_new_tokens=tc.max_new_tokens,
        batch_size=tc.generation_batch_size,
    )
    if backend == "hf":
        return HFPolicy(model, tokenizer, share_prefix=tc.share_prompt_prefix, **kwargs)
    if backend == "vllm":
        from sdar.vllm_policy import VLLMPolicy

        kwargs.update(
            gpu_memory_utilization=tc.vllm_gpu_memory_utilization, enable_sleep_mode=tc.vllm_enable_sleep_mode
        )
        return VLLMPolicy(model, tokenizer, **kwargs)
    raise ValueError(f"unknown generation backend {backend!r}; valid choices: hf, vllm")

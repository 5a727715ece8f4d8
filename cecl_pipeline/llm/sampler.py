"""Batched sampling from Qwen3: prompt prefill plus KV-cache decode, compiled as one jitted loop.

``sample(params, config, prompt_tokens, prompt_valid, SamplingConfig(...), rng)`` takes a left-padded
prompt batch (every row at least one real token) and returns the new tokens, their log-probs and
the completion lengths. With ``group_size=G`` it draws G completions of every prompt (a GRPO group)
and computes each prompt's prefill once, not G times. The decode loop is a ``lax.while_loop`` in the same jit as the prefill: no
Python work per token, and the loop exits as soon as every row has emitted an EOS.

Shapes: B batch (prompts × group_size), P prompt width, N = max_new_tokens, V vocab.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.model import KVCache, Qwen3, positions_from_valid


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick each new token. temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off."""

    max_new_tokens: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0

    def __post_init__(self):
        # A list would make the config unhashable, and it is a jit static argument.
        object.__setattr__(self, "eos_token_ids", tuple(int(t) for t in self.eos_token_ids))
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0, top_k >= 0 and 0 < top_p <= 1, got {self}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes) -> SamplingConfig:
        return dataclasses.replace(self, **changes)


class SampleResult(NamedTuple):
    """What ``sample`` returns. After a row's EOS its tokens are pad and its log-probs 0.

    logprobs: log p(token) under the model's own distribution (temperature 1, no top-k/top-p), the
    quantity policy-gradient losses need. sample_logprobs: log-prob under the distribution actually
    sampled from (after temperature, top-k and top-p; 0 for greedy).
    """

    tokens: jax.Array  # [B, N] int32
    logprobs: jax.Array  # [B, N] float32
    sample_logprobs: jax.Array  # [B, N] float32
    lengths: jax.Array  # [B] int32: new tokens including the EOS
    sequences: jax.Array  # [B, P + N] int32: prompt then completion
    sequence_valid: jax.Array  # [B, P + N] bool: real prompt tokens and new tokens up to the EOS
    step_logits: jax.Array | None = None  # [B, N, V] float32 raw logits each token was chosen from; with return_logits


def sample(params, config: Qwen3Config, prompt_tokens, prompt_valid, sampling: SamplingConfig, rng: jax.Array,
           return_logits: bool = False, group_size: int = 1) -> SampleResult:
    """Generate up to ``sampling.max_new_tokens`` per row of a left-padded prompt batch, reproducibly from ``rng``.

    ``group_size`` G samples every prompt G times: result rows come in runs of G, row i from prompt
    i // G, exactly as for the prompts repeated G times, with one prefill per prompt.
    Compiled once per (config, sampling, shapes, return_logits, group_size); later calls reuse the executable.
    """
    prompt_tokens = jnp.asarray(prompt_tokens, jnp.int32)
    prompt_valid = jnp.asarray(prompt_valid, bool)
    return _sample_jit(params, prompt_tokens, prompt_valid, rng, config=config, sampling=sampling, return_logits=return_logits,
                       group_size=group_size)


def _sample_impl(params, prompt_tokens, prompt_valid, rng, *, config, sampling, return_logits, group_size) -> SampleResult:
    model = Qwen3(config)
    steps = sampling.max_new_tokens
    # The prefill leaves out the last prompt column, so it computes no logits at all (XLA drops the
    # unused [B, P, V] head); the loop's first step feeds that column. Left padding: it is every
    # row's last real token, at position length - 1.
    cache = prefill(model, params, prompt_tokens[:, :-1], prompt_valid[:, :-1], steps, group_size)
    prompt_tokens, prompt_valid = (jnp.repeat(x, group_size, axis=0) for x in (prompt_tokens, prompt_valid))
    batch = prompt_tokens.shape[0]
    last_position = prompt_valid.sum(axis=1, dtype=jnp.int32) - 1

    def body(carry):
        step, token, cache, done, out = carry
        logits, cache = _decode_step(model, params, cache, token, last_position + step, ~done, step)
        token, logprob, sample_logprob = choose_token(logits, jax.random.fold_in(rng, step), sampling)
        token, logprob, sample_logprob = _after_eos(done, sampling.pad_token_id, token, logprob, sample_logprob)
        out = _record(out, step, (token, logprob, sample_logprob) + ((logits,) if return_logits else ()))
        return step + 1, token, cache, done | _is_eos(token, sampling.eos_token_ids), out

    def cond(carry):
        step, _, _, done, _ = carry
        return (step < steps) & ~jnp.all(done)

    out = _empty_outputs(batch, steps, config.vocab_size, sampling.pad_token_id, return_logits)
    start = (jnp.int32(0), prompt_tokens[:, -1], cache, jnp.zeros((batch,), bool), out)
    *_, out = jax.lax.while_loop(cond, body, start)
    return _result(prompt_tokens, prompt_valid, out, sampling)


def prefill(model, params, tokens, valid, new_slots: int, repeat: int = 1) -> KVCache:
    """A cache whose shared prefix holds the prompt's keys and values, with ``new_slots`` empty slots a row after it.

    The logits are discarded. ``repeat`` gives every prompt row that many cache rows (row i serves
    rows i·repeat … i·repeat + repeat − 1), which all read its one prefix: a prompt shared by a group
    is computed and stored once, and under ``jax.grad`` the gradients of its readers add up.
    """
    batch, width = tokens.shape
    cache = KVCache.empty(model.config, batch * repeat, new_slots)
    if width == 0:
        return cache
    _, prompt = model.apply({"params": params}, tokens, positions_from_valid(valid), valid,
                            cache=KVCache.empty(model.config, batch, width), cache_index=0)
    return cache.replace(shared_keys=prompt.keys, shared_values=prompt.values, shared_valid=prompt.valid)


def _decode_step(model, params, cache, token, position, valid, slot):
    """Feed one token per row at cache slot ``slot`` (after the prompt's shared prefix); the float32 logits for the next one."""
    logits, cache = model.apply({"params": params}, token[:, None], position[:, None], valid[:, None], cache=cache, cache_index=slot)
    return logits[:, 0].astype(jnp.float32), cache


def _after_eos(done, pad, token, logprob, sample_logprob):
    """Finished rows emit pad with log-prob 0."""
    return jnp.where(done, pad, token), jnp.where(done, 0.0, logprob), jnp.where(done, 0.0, sample_logprob)


def _is_eos(token, eos_token_ids):
    if not eos_token_ids:
        return jnp.zeros(token.shape, bool)
    return jnp.any(token[..., None] == jnp.asarray(eos_token_ids, jnp.int32), axis=-1)


def _empty_outputs(batch, steps, vocab, pad, return_logits):
    """Output buffers prefilled as finished rows leave them, so an early loop exit needs no fix-up."""
    zeros = jnp.zeros((batch, steps), jnp.float32)
    out = (jnp.full((batch, steps), pad, jnp.int32), zeros, zeros)
    return out + ((jnp.zeros((batch, steps, vocab), jnp.float32),) if return_logits else ())


def _record(out, step, values):
    """Write each [B, ...] value into column ``step`` of its [B, N, ...] buffer."""
    put = lambda buf, v: jax.lax.dynamic_update_index_in_dim(buf, v.astype(buf.dtype), step, axis=1)
    return tuple(put(buf, v) for buf, v in zip(out, values, strict=True))


def _result(prompt_tokens, prompt_valid, out, sampling) -> SampleResult:
    tokens, logprobs, sample_logprobs, *step_logits = out
    eos = _is_eos(tokens, sampling.eos_token_ids)
    lengths = jnp.where(eos.any(axis=1), jnp.argmax(eos, axis=1) + 1, tokens.shape[1]).astype(jnp.int32)
    new_valid = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return SampleResult(tokens, logprobs, sample_logprobs, lengths, jnp.concatenate([prompt_tokens, tokens], axis=1),
                        jnp.concatenate([prompt_valid, new_valid], axis=1), step_logits[0] if step_logits else None)


_sample_jit = jax.jit(_sample_impl, static_argnames=("config", "sampling", "return_logits", "group_size"))


# --- token choice ---------------------------------------------------------------------------------------------


def choose_token(logits: jax.Array, rng: jax.Array, sampling: SamplingConfig):
    """One token per row from float32 logits [B, V]: (token, model log-prob, sampled-distribution log-prob)."""
    if sampling.greedy:
        token = _first_argmax(logits)
        return token, _model_logprob(logits, token), jnp.zeros(token.shape, jnp.float32)
    scores = logits if sampling.temperature == 1.0 else logits / sampling.temperature
    ids = None
    if sampling.top_k:  # sorted descending, so top-p on top of top-k is a cheap prefix
        scores, ids = jax.lax.top_k(scores, min(sampling.top_k, scores.shape[-1]))
        if sampling.top_p < 1.0:
            scores = _top_p_sorted(scores, sampling.top_p)
    elif sampling.top_p < 1.0:
        scores = _top_p_unsorted(scores, sampling.top_p)
    choice, sample_logprob = _inverse_cdf(scores, jax.random.uniform(rng, (scores.shape[0],)))
    token = choice if ids is None else _take(ids, choice)
    return token, _model_logprob(logits, token), sample_logprob


def _model_logprob(logits, token):
    return _take(logits, token) - jax.nn.logsumexp(logits, axis=-1)


def _first_argmax(x):
    """argmax as max + min-index: a plain reduction, about 4x faster on CPU than XLA's (value, index) argmax."""
    top = jnp.max(x, axis=-1, keepdims=True)
    return jnp.min(jnp.where(x == top, jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape[-1]), axis=-1)


def _inverse_cdf(scores, u):
    """Sample each row from softmax(scores) (-inf = excluded) with one uniform per row; (index, its log-prob).

    Exact inverse-CDF sampling; ~10x cheaper on CPU than Gumbel-max, which draws V random numbers a row.
    """
    top = jnp.max(scores, axis=-1, keepdims=True)
    weights = jnp.exp(scores - top)  # excluded → 0; the top one → 1, so total >= 1
    cumulative = _cumsum(weights)
    total = cumulative[:, -1:]
    index = jnp.minimum(jnp.sum(cumulative <= u[:, None] * total, axis=-1), scores.shape[-1] - 1).astype(jnp.int32)
    # A zero-weight index can only come from float rounding at the very top of the range; it must
    # never be returned, since it may be outside the top-k/top-p set.
    index = jnp.where(_take(weights, index) > 0, index, _first_argmax(scores))
    return index, _take(scores, index) - top[:, 0] - jnp.log(total[:, 0])


def _cumsum(x, block: int = 64):
    """Inclusive cumulative sum along the last axis as blocked matmuls (XLA's CPU cumsum is ~4x slower)."""
    b, n = x.shape
    if n <= block:
        return _matmul(x, jnp.triu(jnp.ones((n, n), x.dtype)))
    padded = -(-n // block) * block
    blocks = jnp.pad(x, ((0, 0), (0, padded - n))).reshape(b, padded // block, block)
    within = _matmul(blocks, jnp.triu(jnp.ones((block, block), x.dtype)))  # [B, n/block, block]
    totals = within[:, :, -1]
    offsets = _cumsum(totals, block) - totals  # exclusive
    return (offsets[:, :, None] + within).reshape(b, padded)[:, :n]


def _matmul(a, b):
    # Full float32: a GPU's default TF32 matmul would round these sums to ~1e-3.
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _top_p_sorted(sorted_scores, top_p):
    """Keep the smallest prefix of descending scores whose probability reaches top_p (always the first)."""
    probs = jax.nn.softmax(sorted_scores, axis=-1)
    mass_before = _cumsum(probs) - probs
    return jnp.where(mass_before < top_p, sorted_scores, -jnp.inf)


def _top_p_unsorted(scores, top_p):
    """Top-p without sorting V: bisect for the highest score τ whose {scores ≥ τ} holds mass ≥ top_p.

    32 halvings of the order-preserving uint32 image of the float scores find τ exactly; tokens tied
    with τ are all kept. A full [B, V] sort costs ~15x more on CPU.
    """
    probs = jax.nn.softmax(scores, axis=-1)
    keys = _sortable_bits(scores)

    def halve(_, bounds):
        lo, hi = bounds  # invariant: mass(keys >= lo) >= top_p > mass(keys >= hi)
        mid = lo + (hi - lo) // 2
        enough = jnp.sum(jnp.where(keys >= mid[:, None], probs, 0.0), axis=-1) >= top_p
        return jnp.where(enough, mid, lo), jnp.where(enough, hi, mid)

    lo, _ = jax.lax.fori_loop(0, 32, halve, (jnp.min(keys, axis=-1), jnp.max(keys, axis=-1) + 1))
    return jnp.where(keys >= lo[:, None], scores, -jnp.inf)


def _sortable_bits(x):
    """float32 → uint32 with the same order (sign bit flipped for positives, all bits for negatives)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(1 << 31))


def _take(values, index):
    return jnp.take_along_axis(values, index[:, None], axis=-1)[:, 0]

"""Qwen3 causal LM in Flax linen.

Why linen: parameters are a plain nested dict, which is exactly what the HF→JAX conversion writes,
what orbax saves and restores, and what ``jax.sharding`` partitions; the model stays a pure function
``apply(params, ...)`` that jits, grads and shards without extra state objects.

Shapes: B batch, T new tokens, S key slots (T without a cache, the cache length with one), Q slots of a cache's shared prefix,
H query heads, K key/value heads, G = H/K heads per group, D head_dim, E hidden, V vocab.
Parameter names mirror HF (``layers_3/self_attn/q_proj/kernel`` ↔ ``model.layers.3.self_attn.q_proj.weight``).
"""

from __future__ import annotations

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from cecl_pipeline.llm.config import Qwen3Config

INIT_STD = 0.02  # HF's initializer_range for Qwen3


class KVCache(flax.struct.PyTreeNode):
    """Static-size key/value cache: slot s of row b holds a token iff ``valid[b, s]``.

    An optional shared prefix comes before slot 0: keys and values that runs of R = B / B' adjacent
    rows all attend to (a prompt and its G sampled completions), stored once per run and never
    written. Attention reads it once per run, not once per row.
    """

    # Heads outside slots, keys transposed: both attention products are then plain batched matmuls
    # over the cache as stored, with no per-step transpose copy of the whole cache.
    keys: tuple[jax.Array, ...]  # per layer [B, K, D, S]
    values: tuple[jax.Array, ...]  # per layer [B, K, S, D]
    valid: jax.Array  # [B, S] bool
    shared_keys: tuple[jax.Array, ...] = ()  # per layer [B', K, D, Q]
    shared_values: tuple[jax.Array, ...] = ()  # per layer [B', K, Q, D]
    shared_valid: jax.Array | None = None  # [B', Q] bool

    @classmethod
    def empty(cls, config: Qwen3Config, batch: int, length: int) -> KVCache:
        k, d = config.num_key_value_heads, config.head_dim
        zeros = lambda shape: tuple(jnp.zeros(shape, config.dtype) for _ in range(config.num_hidden_layers))
        return cls(keys=zeros((batch, k, d, length)), values=zeros((batch, k, length, d)), valid=jnp.zeros((batch, length), bool))

    def layer(self, i: int) -> tuple:
        """Layer i's (keys, values, shared keys or None, shared values or None)."""
        shared = (self.shared_keys[i], self.shared_values[i]) if self.shared_keys else (None, None)
        return (self.keys[i], self.values[i], *shared)


class RMSNorm(nn.Module):
    eps: float
    dtype: str
    param_dtype: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), self.param_dtype)
        x32 = x.astype(jnp.float32)  # the mean of squares in float32, as HF does, also for bf16
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return normed.astype(self.dtype) * scale.astype(self.dtype)


def rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotary embedding, HF's rotate-half layout. x [B, T, heads, D], positions [B, T]."""
    d = x.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))  # [D/2]
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, D/2]
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]  # [B, T, 1, D]
    cos, sin = jnp.cos(angles).astype(x.dtype), jnp.sin(angles).astype(x.dtype)
    x1, x2 = jnp.split(x, 2, axis=-1)
    return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin


class FlatDense(nn.Dense):
    """nn.Dense on [..., E] as one 2-D matmul over the flattened leading dims.

    Same parameters as nn.Dense; the 2-D form spares XLA on CPU strided transposes of 3-D
    activation gradients in the backward pass (the GRPO update ran 25% faster).
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        return super().__call__(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.features)


def dense(features: int, config: Qwen3Config, name: str) -> nn.Dense:
    return FlatDense(features, use_bias=False, dtype=config.dtype, param_dtype=config.param_dtype,
                     kernel_init=nn.initializers.normal(INIT_STD), name=name)


class Attention(nn.Module):
    """Grouped-query attention with per-head q/k RMSNorm and RoPE."""

    config: Qwen3Config

    @nn.compact
    def __call__(self, x, positions, mask, layer_cache=None, cache_index=None):
        c = self.config
        b, t, _ = x.shape
        h, k, d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        q = dense(h * d, c, "q_proj")(x).reshape(b, t, h, d)
        key = dense(k * d, c, "k_proj")(x).reshape(b, t, k, d)
        value = dense(k * d, c, "v_proj")(x).reshape(b, t, k, d)
        q = rope(RMSNorm(c.rms_norm_eps, c.dtype, c.param_dtype, name="q_norm")(q), positions, c.rope_theta)
        key = rope(RMSNorm(c.rms_norm_eps, c.dtype, c.param_dtype, name="k_norm")(key), positions, c.rope_theta)
        key, value = key.transpose(0, 2, 3, 1), value.transpose(0, 2, 1, 3)  # [B, K, D, T], [B, K, T, D]
        shared_k = shared_v = None
        if layer_cache is not None:  # write the new tokens into their slots, attend over the whole cache
            cached_k, cached_v, shared_k, shared_v = layer_cache
            key = jax.lax.dynamic_update_slice(cached_k, key.astype(cached_k.dtype), (0, 0, 0, cache_index))
            value = jax.lax.dynamic_update_slice(cached_v, value.astype(cached_v.dtype), (0, 0, cache_index, 0))
        g = h // k
        grouped_q = q.reshape(b, t, k, g, d).transpose(0, 2, 3, 1, 4).reshape(b, k, g * t, d)  # [B, K, G*T, D]
        scores = jnp.einsum("bkqd,bkds->bkqs", grouped_q, key.astype(q.dtype))  # [B, K, G*T, S]
        if shared_k is not None:  # the shared prefix's slots first, as in the mask
            scores = jnp.concatenate([_per_run(grouped_q, shared_k.astype(q.dtype), "bkqd,bkds->bkqs"), scores], axis=-1)
        scores = scores.astype(jnp.float32) * d**-0.5
        scores = jnp.where(mask[:, None, None, :, :], scores.reshape(b, k, g, t, -1), jnp.finfo(jnp.float32).min)  # [B, K, G, T, Q + S]
        weights = jax.nn.softmax(scores, axis=-1).astype(c.dtype).reshape(b, k, g * t, -1)
        if shared_k is None:
            out = jnp.einsum("bkqs,bksd->bkqd", weights, value.astype(c.dtype))  # [B, K, G*T, D]
        else:
            q_slots = shared_k.shape[-1]
            out = (_per_run(weights[..., :q_slots], shared_v.astype(c.dtype), "bkqs,bksd->bkqd")
                   + jnp.einsum("bkqs,bksd->bkqd", weights[..., q_slots:], value.astype(c.dtype)))
        out = out.reshape(b, k, g, t, d).transpose(0, 3, 1, 2, 4).reshape(b, t, h * d)
        return dense(c.hidden_size, c, "o_proj")(out), (key, value)


def _per_run(rows: jax.Array, shared: jax.Array, equation: str) -> jax.Array:
    """``einsum(equation, rows, shared)`` for rows [B, K, Q, X] against shared [B', K, X, Y] that runs of B / B' rows share.

    Each run's rows are stacked along Q, so the shared operand is read once per run, in one larger matmul.
    """
    b, k, q, x = rows.shape
    runs = shared.shape[0]
    stacked = rows.reshape(runs, b // runs, k, q, x).transpose(0, 2, 1, 3, 4).reshape(runs, k, -1, x)
    out = jnp.einsum(equation, stacked, shared)  # [B', K, R*Q, Y]
    return out.reshape(runs, k, b // runs, q, -1).transpose(0, 2, 1, 3, 4).reshape(b, k, q, -1)


def _rows_of_runs(x: jax.Array, rows: int) -> jax.Array:
    """Per-run [B', ...] to per-row [B, ...]: run r covers rows r·R … r·R + R − 1."""
    return jnp.repeat(x, rows // x.shape[0], axis=0)


class MLP(nn.Module):
    config: Qwen3Config

    @nn.compact
    def __call__(self, x):
        c = self.config
        gate = dense(c.intermediate_size, c, "gate_proj")(x)
        up = dense(c.intermediate_size, c, "up_proj")(x)
        return dense(c.hidden_size, c, "down_proj")(nn.silu(gate) * up)


class Block(nn.Module):
    config: Qwen3Config

    @nn.compact
    def __call__(self, x, positions, mask, layer_cache=None, cache_index=None):
        c = self.config
        attended, kv = Attention(c, name="self_attn")(
            RMSNorm(c.rms_norm_eps, c.dtype, c.param_dtype, name="input_layernorm")(x), positions, mask, layer_cache, cache_index
        )
        x = x + attended
        x = x + MLP(c, name="mlp")(RMSNorm(c.rms_norm_eps, c.dtype, c.param_dtype, name="post_attention_layernorm")(x))
        return x, kv


class Qwen3(nn.Module):
    """``apply(params, tokens, positions, valid, cache=None, cache_index=None) -> (logits, cache)``.

    tokens, positions [B, T] int32; valid [B, T] bool (False on padding). With a cache, the T tokens
    are written at slots ``cache_index … cache_index+T-1`` and attend to every valid earlier slot,
    and to every valid slot of the cache's shared prefix. Logits are [B, T, V]; XLA drops the head
    wherever a caller discards them (a prefill), and GRPO feeds only completion positions here,
    its prompt going into the cache first (``grpo.policy.completion_logits``).
    """

    config: Qwen3Config

    @nn.compact
    def __call__(self, tokens, positions, valid, cache: KVCache | None = None, cache_index=None):
        c = self.config
        embed = nn.Embed(c.vocab_size, c.hidden_size, dtype=c.dtype, param_dtype=c.param_dtype,
                         embedding_init=nn.initializers.normal(INIT_STD), name="embed_tokens")
        x = embed(tokens)  # [B, T, E]
        mask, key_valid = attention_mask(valid, cache, cache_index)
        block_cls = nn.remat(Block) if c.remat else Block
        new_keys, new_values = [], []
        for i in range(c.num_hidden_layers):
            layer_cache = cache.layer(i) if cache is not None else None
            x, (k, v) = block_cls(c, name=f"layers_{i}")(x, positions, mask, layer_cache, cache_index)
            new_keys.append(k)
            new_values.append(v)
        x = RMSNorm(c.rms_norm_eps, c.dtype, c.param_dtype, name="norm")(x)
        flat = x.reshape(-1, x.shape[-1])  # [B·T, E]: one 2-D matmul, as in FlatDense
        logits = (embed.attend(flat) if c.tie_word_embeddings else dense(c.vocab_size, c, "lm_head")(flat)).reshape(*x.shape[:-1], -1)  # [B, T, V]
        new_cache = cache.replace(keys=tuple(new_keys), values=tuple(new_values), valid=key_valid) if cache is not None else None
        return logits, new_cache


def attention_mask(valid: jax.Array, cache: KVCache | None, cache_index) -> tuple[jax.Array, jax.Array]:
    """[B, T, Q + S] mask: every real slot of the shared prefix (Q, if any), then causal ∧ key-is-a-real-token
    over the S slots; and the slots' validity after this step."""
    b, t = valid.shape
    if cache is None:
        key_valid, first_slot = valid, 0
    else:
        key_valid = jax.lax.dynamic_update_slice(cache.valid, valid, (0, cache_index))
        first_slot = cache_index
    query_slot = first_slot + jnp.arange(t)  # [T]
    key_slot = jnp.arange(key_valid.shape[1])  # [S]
    causal = key_slot[None, :] <= query_slot[:, None]  # [T, S]
    mask = causal[None] & key_valid[:, None, :]
    if cache is not None and cache.shared_valid is not None:  # the prefix comes before every query
        shared = _rows_of_runs(cache.shared_valid, b)[:, None, :]
        mask = jnp.concatenate([jnp.broadcast_to(shared, (b, t, shared.shape[-1])), mask], axis=-1)
    return mask, key_valid


def positions_from_valid(valid: jax.Array) -> jax.Array:
    """Left padding: each real token's position counts the real tokens before it."""
    return jnp.maximum(jnp.cumsum(valid.astype(jnp.int32), axis=-1) - 1, 0)


def init_params(config: Qwen3Config, seed: int = 0) -> dict:
    """Random parameters (normal(0.02) kernels, unit norms), shaped exactly like a converted checkpoint."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    return Qwen3(config).init(jax.random.PRNGKey(seed), tokens, tokens, jnp.ones((1, 1), bool))["params"]

"""FLOP counts of the Qwen3 model and the peaks to divide them by, for throughput and MFU figures.

Counts are model FLOPs (one multiply-add = 2 FLOPs), matmuls only: norms, RoPE, softmax, the
embedding lookup and the optimizer are left out, as is usual for MFU. Per token fed at ``context``
keys, one forward pass costs

    2 x matmul_params(config)  +  4 x layers x heads x head_dim x context

where ``matmul_params`` counts the q/k/v/o projections, the MLP and the V x E output head, and the
attention term is QK^T plus weights·V against ``context`` keys. A whole-sequence pass of length L
(training, or recomputing log-probs) computes every query against all L keys and masks afterwards,
so its context is L for every token (the PaLM convention; a causal kernel would do about half).
``forward_flops`` counts the head on every token; ``update_flops`` counts it on the completion
positions only, as a GRPO update that recomputes whole sequences (TRL's, with ``logits_to_keep``)
does. ``grouped_update_flops`` counts what ours computes: each prompt once per group into a KV cache
(its tokens attending to the prompt only, and in the last layer needing only their keys and
values), then every completion against that cache. Training
(forward + backward) is 3x the forward: the backward computes gradients for both activations and weights.

Peaks: ``matmul_peak_flops`` measures a float32 square matmul on the default JAX device in this
process, the practical ceiling on a CPU; ``device_peak_flops`` returns the datasheet dense bf16
peak of a known accelerator and None elsewhere. JAX is imported only by the functions that need it.
"""

from __future__ import annotations

import statistics
import time

from cecl_pipeline.llm.config import Qwen3Config

# Datasheet dense (no sparsity) bf16 peaks, by a substring of jax's ``device_kind``; first match wins.
DEVICE_BF16_PEAKS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM and NVL ("NVIDIA H100 80GB HBM3")
    ("H200", 989e12),  # and GH200
    ("A100", 312e12),
)


def matmul_params(config: Qwen3Config) -> int:
    """Weights a token meets in matmuls: attention projections and MLP of every layer, plus the V x E head."""
    c = config
    attention = c.hidden_size * c.head_dim * (2 * c.num_attention_heads + 2 * c.num_key_value_heads)  # q, o; k, v
    mlp = 3 * c.hidden_size * c.intermediate_size  # gate, up, down
    return c.num_hidden_layers * (attention + mlp) + c.vocab_size * c.hidden_size


def attention_flops_per_token(config: Qwen3Config, context: int) -> int:
    """QK^T and weights·V for one query against ``context`` keys, over all layers and heads."""
    return 4 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * context


def forward_flops_per_token(config: Qwen3Config, context: int) -> int:
    """Forward FLOPs of one token that attends to ``context`` keys (formula in the module doc)."""
    return 2 * matmul_params(config) + attention_flops_per_token(config, context)


def forward_flops(config: Qwen3Config, tokens: int, context: int) -> int:
    """Forward FLOPs of ``tokens`` tokens, each attending to ``context`` keys.

    A batch of N whole sequences of length L: ``forward_flops(config, N * L, L)``.
    """
    return tokens * forward_flops_per_token(config, context)


def train_flops(config: Qwen3Config, tokens: int, context: int) -> int:
    """Forward + backward FLOPs (3x the forward) of ``tokens`` tokens at ``context`` keys each.

    For a GRPO update on N sequences of length L (prompt + completion): ``train_flops(config, N * L, L)``.
    """
    return 3 * forward_flops(config, tokens, context)


def head_flops_per_token(config: Qwen3Config) -> int:
    return 2 * config.vocab_size * config.hidden_size


def update_flops(config: Qwen3Config, rows: int, width: int, completion: int) -> int:
    """Forward + backward FLOPs of a GRPO update on ``rows`` sequences of ``width`` tokens, ``completion`` of them scored.

    The last token is not fed (nothing after it to score), so each row feeds width − 1 tokens at
    that context; the head runs on the ``completion`` positions only.
    """
    fed = width - 1
    body = rows * fed * (forward_flops_per_token(config, fed) - head_flops_per_token(config))
    return 3 * (body + rows * completion * head_flops_per_token(config))


def grouped_update_flops(config: Qwen3Config, rows: int, width: int, completion: int, share: int) -> int:
    """Forward + backward FLOPs of our GRPO update (``grpo.policy.completion_logits``) on ``rows`` sequences in runs of ``share`` per prompt.

    Each run's prompt, less its last token, is fed once at its own context; each row then feeds the
    last prompt token and all completion tokens but the last, at context width − 1, with the head.
    """
    prompt = width - completion - 1
    prompt_body = rows // share * prompt * cache_only_flops_per_token(config, prompt)
    return 3 * (prompt_body + rows * completion * forward_flops_per_token(config, width - 1))


def cache_only_flops_per_token(config: Qwen3Config, context: int) -> int:
    """Forward FLOPs of a token fed only for its cached keys and values: every layer but the last, then the last one's k/v projections."""
    c = config
    per_layer = (forward_flops_per_token(c, context) - head_flops_per_token(c)) // c.num_hidden_layers
    return (c.num_hidden_layers - 1) * per_layer + 2 * 2 * c.hidden_size * c.num_key_value_heads * c.head_dim


def decode_flops(config: Qwen3Config, batch: int, prompt: int, steps: range) -> int:
    """KV-cache decoding: one token per row at each step i in ``steps``, attending to ``prompt + i`` keys.

    Counts the real context, not the padded cache; step 0 is the token the prefill produces.
    """
    return batch * sum(forward_flops_per_token(config, prompt + i) for i in steps)


def mfu(flops: float, seconds: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s as a fraction of ``peak_flops`` (FLOP/s)."""
    return flops / seconds / peak_flops


def matmul_peak_flops(n: int = 2048, dtype: str = "float32", repeats: int = 5) -> float:
    """FLOP/s of a jitted n x n @ n x n matmul on the default JAX device, median of ``repeats`` after a warm-up.

    Measured, so it reflects this machine now (threads, load, clocks); about 0.1 s at n=2048 on 2 CPU cores.
    """
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.dtype(dtype))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def device_peak_flops(device=None) -> float | None:
    """Datasheet dense bf16 FLOP/s of ``device`` (default: the first JAX device) if it is a known GPU; None on CPU or unknown kinds."""
    if device is None:
        import jax

        device = jax.devices()[0]
    if device.platform != "gpu":
        return None
    kind = device.device_kind
    return next((peak for name, peak in DEVICE_BF16_PEAKS if name in kind), None)

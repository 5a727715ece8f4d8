"""FLOP counts against a hand count, the model's own parameter tree and XLA's cost analysis; device peaks."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

from cecl_pipeline.llm import flops
from cecl_pipeline.llm.config import NAMED_CONFIGS, Qwen3Config
from cecl_pipeline.llm.model import Qwen3, init_params

# vocab 10, hidden 4, MLP 6, 2 layers, 2 query heads sharing 1 KV head, head_dim 3
SMALL = Qwen3Config(vocab_size=10, hidden_size=4, intermediate_size=6, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                    head_dim=3)


def test_hand_count_of_a_small_config():
    # per layer: q 4x6 + k 4x3 + v 4x3 + o 6x4 = 72; gate, up 4x6 and down 6x4 = 72; 2 layers = 288; head 10x4 = 40
    assert flops.matmul_params(SMALL) == 328
    # per token at 5 keys: 2 x 328 + (QK^T 2x3x5 + weights·V 2x3x5) per head x 2 heads x 2 layers = 656 + 240
    assert flops.attention_flops_per_token(SMALL, 5) == 240
    assert flops.forward_flops_per_token(SMALL, 5) == 896
    assert flops.forward_flops(SMALL, tokens=7, context=5) == 7 * 896
    assert flops.train_flops(SMALL, tokens=7, context=5) == 3 * 7 * 896
    # a GRPO update on 3 rows of width 5 scoring 2 completion tokens: 4 tokens fed at 4 keys, the head (2 x 10 x 4) on 2
    body_per_token = 2 * 328 + 4 * 2 * 2 * 3 * 4 - 80
    assert flops.update_flops(SMALL, rows=3, width=5, completion=2) == 3 * (3 * 4 * body_per_token + 3 * 2 * 80)
    # the same 3 rows sharing one 3-token prompt: its first 2 tokens fed once at 2 keys, for their keys and values
    # only (layer 1 in full, 2 x 144 + 2 x 2 x 3 x 2 x 2; layer 2's k and v, 2 x 24); then per row the last prompt
    # token and the first completion token at 4 keys, with the head
    cache_only = 2 * 144 + 2 * 2 * 3 * 2 * 2 + 2 * 24
    assert flops.cache_only_flops_per_token(SMALL, 2) == cache_only
    assert flops.grouped_update_flops(SMALL, rows=3, width=5, completion=2, share=3) == 3 * (2 * cache_only + 3 * 2 * (2 * 328 + 4 * 2 * 2 * 3 * 4))
    # decoding after a 4-token prompt: steps 1 and 2 attend to 5 and 6 keys
    assert flops.decode_flops(SMALL, batch=3, prompt=4, steps=range(1, 3)) == 3 * (896 + 2 * 328 + 4 * 2 * 2 * 3 * 6)


@pytest.mark.parametrize("name", ["tiny", "qwen3-0.6b"])
def test_matmul_params_are_the_models_kernels_plus_the_head(name):
    config = NAMED_CONFIGS[name]
    if name != "tiny":  # count the shapes without allocating a 0.6B model
        shapes = jax.eval_shape(lambda: init_params(config))
    else:
        shapes = init_params(config)
    flat = flatten_dict(shapes)
    kernels = sum(int(np.prod(v.shape)) for k, v in flat.items() if k[-1] == "kernel")
    head = config.vocab_size * config.hidden_size  # tied: the embedding matrix, used once more as the head
    assert flops.matmul_params(config) == kernels + head


def test_forward_count_is_close_to_xlas_cost_analysis():
    """XLA counts every op; the matmuls we count should be nearly all of it (norms, softmax, RoPE are the rest)."""
    config = Qwen3Config(vocab_size=256, hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=16)
    params = init_params(config)
    batch, length = 2, 32
    tokens = jnp.zeros((batch, length), jnp.int32)
    positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
    valid = jnp.ones((batch, length), bool)
    forward = lambda p, t: Qwen3(config).apply({"params": p}, t, positions, valid)[0]
    ratio = xla_flops(forward, params, tokens) / flops.forward_flops(config, batch * length, length)
    assert 1.0 <= ratio < 1.1


@pytest.mark.parametrize("share", [1, 4])
def test_grouped_update_count_is_close_to_xlas_cost_analysis(share):
    """The forward of ``completion_logits`` (a prompt run once per group, completions against its cache) is a third of the count."""
    from cecl_pipeline.grpo.logprobs import completion_logits

    config = Qwen3Config(vocab_size=256, hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=16)
    params = init_params(config)
    rows, width, completion = 8, 48, 16
    tokens, valid = jnp.zeros((rows, width), jnp.int32), jnp.ones((rows, width), bool)
    forward = lambda p, t: completion_logits(p, config, t, valid, width - completion, share)
    ratio = xla_flops(forward, params, tokens) / (flops.grouped_update_flops(config, rows, width, completion, share) / 3)
    assert 1.0 <= ratio < 1.1


def xla_flops(fn, *args) -> float:
    """The FLOPs XLA's cost analysis counts for ``jax.jit(fn)(*args)``."""
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    return (analysis[0] if isinstance(analysis, list) else analysis)["flops"]


def test_device_peaks():
    gpu = lambda kind: SimpleNamespace(platform="gpu", device_kind=kind)
    assert flops.device_peak_flops(gpu("NVIDIA H100 80GB HBM3")) == 989e12
    assert flops.device_peak_flops(gpu("NVIDIA H200")) == 989e12
    assert flops.device_peak_flops(gpu("NVIDIA H100 PCIe")) == 756e12
    assert flops.device_peak_flops(gpu("Some Future GPU")) is None
    assert flops.device_peak_flops(SimpleNamespace(platform="cpu", device_kind="cpu")) is None
    if jax.default_backend() == "cpu":
        assert flops.device_peak_flops() is None


def test_matmul_peak_and_mfu():
    peak = flops.matmul_peak_flops(n=256, repeats=3)
    assert 1e8 < peak < 1e16
    assert flops.mfu(2e9, 2.0, 4e9) == pytest.approx(0.25)

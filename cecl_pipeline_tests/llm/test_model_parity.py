"""Our Flax Qwen3 against transformers' Qwen3ForCausalLM on CPU, float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from cecl_pipeline.llm.config import NAMED_CONFIGS, Qwen3Config
from cecl_pipeline.llm.model import Qwen3, init_params, positions_from_valid
from cecl_pipeline_tests.conftest import SHARED
from cecl_pipeline_tests.llm.reference import GQA_CASES, left_padded_batch, our_config, our_params, reference_model


@pytest.mark.parametrize(("heads", "kv_heads", "tied"), GQA_CASES)
@pytest.mark.parametrize("lengths", [[7], [13, 5, 1], [11, 11]], ids=["odd", "left-padded", "full"])
def test_logits_match_transformers(heads, kv_heads, tied, lengths):
    reference = reference_model(kv_heads, tied, heads=heads)
    ids, valid = left_padded_batch(lengths, reference.config.vocab_size)
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(valid.astype(np.int64))).logits.numpy()
    valid_j = jnp.asarray(valid)
    logits, _ = Qwen3(our_config(reference)).apply({"params": our_params(reference)}, jnp.asarray(ids), positions_from_valid(valid_j), valid_j)
    assert np.abs(np.asarray(logits) - expected)[valid].max() < 1e-4


def test_bfloat16_compute_stays_close_to_float32():
    reference = reference_model(2, True)
    ids, valid = left_padded_batch([9, 6], reference.config.vocab_size)
    config, params = our_config(reference), our_params(reference)
    valid_j = jnp.asarray(valid)
    f32, _ = Qwen3(config).apply({"params": params}, ids, positions_from_valid(valid_j), valid_j)
    bf16_params = jax.tree_util.tree_map(lambda p: p.astype(jnp.bfloat16), params)
    bf16, _ = Qwen3(config.replace(dtype="bfloat16", param_dtype="bfloat16")).apply({"params": bf16_params}, ids, positions_from_valid(valid_j), valid_j)
    assert bf16.dtype == jnp.bfloat16
    err = np.abs(np.asarray(bf16, np.float32) - np.asarray(f32))[valid]
    assert err.max() < 0.1 * np.abs(np.asarray(f32)[valid]).max()


def test_remat_changes_neither_names_nor_values():
    config = NAMED_CONFIGS["tiny"].replace(num_hidden_layers=2, vocab_size=256)
    plain, remat = init_params(config), init_params(config.replace(remat=True))
    assert jax.tree_util.tree_structure(plain) == jax.tree_util.tree_structure(remat)
    tokens = jnp.arange(10)[None] % 256
    valid = jnp.ones((1, 10), bool)
    loss = lambda p, c: Qwen3(c).apply({"params": p}, tokens, positions_from_valid(valid), valid)[0].mean()
    g_plain, g_remat = jax.grad(loss)(plain, config), jax.grad(loss)(plain, config.replace(remat=True))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: np.allclose(a, b, atol=1e-6), g_plain, g_remat))


def test_named_configs_match_the_published_shapes():
    real = Qwen3Config.from_file(SHARED / "qwen3" / "Qwen3-1.7B.config.json")
    ours = NAMED_CONFIGS["qwen3-1.7b"]
    assert ours.replace(max_position_embeddings=real.max_position_embeddings, pad_token_id=real.pad_token_id) == real
    assert 1.5e9 < ours.param_count() < 2.1e9
    assert NAMED_CONFIGS["qwen3-0.6b"].hidden_size == 1024 and NAMED_CONFIGS["qwen3-0.6b"].intermediate_size == 3072
    assert NAMED_CONFIGS["tiny"].param_count() == sum(x.size for x in jax.tree_util.tree_leaves(init_params(NAMED_CONFIGS["tiny"])))

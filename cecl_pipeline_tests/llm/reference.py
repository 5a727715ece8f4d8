"""transformers' Qwen3ForCausalLM (PyTorch, CPU) as the numerical reference, and its weights as our params."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flax.traverse_util import unflatten_dict
from transformers import Qwen3Config as HFQwen3Config
from transformers import Qwen3ForCausalLM

from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.param_names import hf_to_flax

# (query heads, kv heads, tied): GQA ratios 1, 2 and 4, tied and untied heads
GQA_CASES = [
    pytest.param(4, 4, True, id="mha-tied"),
    pytest.param(4, 2, False, id="gqa2-untied"),
    pytest.param(4, 1, True, id="gqa4-tied"),
    pytest.param(8, 2, False, id="gqa4-untied"),
]


def reference_model(kv_heads: int, tied: bool, heads: int = 4, layers: int = 2, vocab: int = 512, seed: int = 0) -> Qwen3ForCausalLM:
    """A random tiny transformers Qwen3 with weights large enough that errors would show."""
    torch.manual_seed(seed)
    config = HFQwen3Config(vocab_size=vocab, hidden_size=64, intermediate_size=160, num_hidden_layers=layers, num_attention_heads=heads,
                           num_key_value_heads=kv_heads, head_dim=16, rope_theta=10_000.0, tie_word_embeddings=tied,
                           bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.1)
    return model


def our_config(model: Qwen3ForCausalLM) -> Qwen3Config:
    return Qwen3Config.from_hf({**model.config.to_dict(), "architectures": ["Qwen3ForCausalLM"]})


def our_params(model: Qwen3ForCausalLM) -> dict:
    """The reference's state dict mapped through the production name mapping (in memory)."""
    flat = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        path, transpose = hf_to_flax(name)
        array = tensor.numpy()
        flat[path] = array.T if transpose else array
    return unflatten_dict(flat)


def left_padded_batch(lengths: list[int], vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    width = max(lengths)
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, (len(lengths), width))
    valid = np.arange(width)[None, :] >= (width - np.asarray(lengths))[:, None]
    return np.where(valid, ids, 0), valid

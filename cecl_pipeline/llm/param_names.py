"""The one mapping between HF Qwen3 tensor names and our Flax parameter paths.

HF stores Linear weights as [out, in]; Flax Dense kernels are [in, out], so those are transposed.
"""

from __future__ import annotations

import re

from cecl_pipeline.llm.config import Qwen3Config

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)\.weight$")
_LINEAR = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
_NORMS = ("input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm")


def hf_to_flax(name: str) -> tuple[tuple[str, ...], bool] | None:
    """HF tensor name → (Flax path, transpose?); None when the name is not a Qwen3 parameter."""
    if name == "model.embed_tokens.weight":
        return ("embed_tokens", "embedding"), False
    if name == "model.norm.weight":
        return ("norm", "scale"), False
    if name == "lm_head.weight":
        return ("lm_head", "kernel"), True
    if m := _LAYER.match(name):
        layer, module = f"layers_{m.group(1)}", m.group(2)
        if module in _LINEAR:
            return (layer, *module.split("."), "kernel"), True
        if module in _NORMS:
            return (layer, *module.split("."), "scale"), False
    return None


def expected_hf_shapes(config: Qwen3Config) -> dict[str, tuple[int, ...]]:
    """Every tensor an HF Qwen3 checkpoint of this config holds (lm_head only when untied), HF layout."""
    e, d, i = config.hidden_size, config.head_dim, config.intermediate_size
    q, kv = config.num_attention_heads * d, config.num_key_value_heads * d
    shapes = {"model.embed_tokens.weight": (config.vocab_size, e), "model.norm.weight": (e,)}
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, e)
    per_layer = {
        "input_layernorm": (e,), "post_attention_layernorm": (e,), "self_attn.q_norm": (d,), "self_attn.k_norm": (d,),
        "self_attn.q_proj": (q, e), "self_attn.k_proj": (kv, e), "self_attn.v_proj": (kv, e), "self_attn.o_proj": (e, q),
        "mlp.gate_proj": (i, e), "mlp.up_proj": (i, e), "mlp.down_proj": (e, i),
    }
    for layer in range(config.num_hidden_layers):
        shapes.update({f"model.layers.{layer}.{module}.weight": shape for module, shape in per_layer.items()})
    return shapes


def flax_to_hf(path: tuple[str, ...]) -> str:
    """Inverse of ``hf_to_flax`` for the names a Qwen3 model has."""
    for name in _all_names(path):
        mapped = hf_to_flax(name)
        if mapped and mapped[0] == tuple(path):
            return name
    raise KeyError(f"no HF name for Flax parameter {'/'.join(path)}")


def _all_names(path: tuple[str, ...]):
    if path[0].startswith("layers_"):
        layer = path[0].removeprefix("layers_")
        yield f"model.layers.{layer}.{'.'.join(path[1:-1])}.weight"
    yield {"embed_tokens": "model.embed_tokens.weight", "norm": "model.norm.weight", "lm_head": "lm_head.weight"}.get(path[0], "")

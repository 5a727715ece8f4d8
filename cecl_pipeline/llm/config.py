"""Qwen3 architecture settings: named shapes and the mapping to and from HF ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

QWEN3_ARCHITECTURE = "Qwen3ForCausalLM"


class ConfigError(ValueError):
    """A config.json that does not describe a Qwen3 causal LM we can build."""


@dataclass(frozen=True)
class Qwen3Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 40_960
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    dtype: str = "float32"  # activations
    param_dtype: str = "float32"
    remat: bool = False  # recompute each block in the backward pass; parameter names do not change

    def __post_init__(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads ({self.num_key_value_heads})")

    def replace(self, **changes) -> Qwen3Config:
        return dataclasses.replace(self, **changes)

    @property
    def kv_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    def param_count(self) -> int:
        h, d, v = self.hidden_size, self.head_dim, self.vocab_size
        attention = h * d * (2 * self.num_attention_heads + 2 * self.num_key_value_heads) + 2 * d
        block = attention + 3 * h * self.intermediate_size + 2 * h
        head = 0 if self.tie_word_embeddings else v * h
        return v * h + self.num_hidden_layers * block + h + head

    def to_hf(self) -> dict:
        """The config.json that transformers' Qwen3ForCausalLM reads."""
        return {
            "architectures": [QWEN3_ARCHITECTURE],
            "model_type": "qwen3",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "attention_bias": False,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "use_sliding_window": False,
            "torch_dtype": self.param_dtype,
        }

    @classmethod
    def from_hf(cls, hf: dict, source: str = "config.json", **overrides) -> Qwen3Config:
        architectures = hf.get("architectures") or []
        if hf.get("model_type") != "qwen3" or (architectures and QWEN3_ARCHITECTURE not in architectures):
            raise ConfigError(f"{source}: model_type {hf.get('model_type')!r} / architectures {architectures} is not Qwen3ForCausalLM")
        if hf.get("use_sliding_window"):
            raise ConfigError(f"{source}: sliding-window attention is not supported")
        rope = hf.get("rope_parameters") or {}
        if (hf.get("rope_scaling") or {}) or rope.get("rope_type", "default") != "default":
            raise ConfigError(f"{source}: only default RoPE is supported, got {hf.get('rope_scaling') or rope}")
        missing = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads") if k not in hf]
        if missing:
            raise ConfigError(f"{source}: missing {', '.join(missing)}")
        heads = hf["num_attention_heads"]
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_hidden_layers=hf["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=hf.get("num_key_value_heads", heads),
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10_000.0))),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            max_position_embeddings=int(hf.get("max_position_embeddings", 40_960)),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=_first(hf.get("eos_token_id")),
            pad_token_id=hf.get("pad_token_id"),
            **overrides,
        )

    @classmethod
    def from_file(cls, path: Path | str, **overrides) -> Qwen3Config:
        path = Path(path)
        try:
            hf = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found; an HF model directory holds config.json") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        return cls.from_hf(hf, source=str(path), **overrides)


def _first(value):
    return value[0] if isinstance(value, list) and value else value


_QWEN3_SHARED = dict(vocab_size=151_936, num_attention_heads=16, num_key_value_heads=8, head_dim=128, rope_theta=1_000_000.0,
                     tie_word_embeddings=True, bos_token_id=151_643, eos_token_id=151_645)

NAMED_CONFIGS = {
    # The embedded default: the shape the benchmarks compare against transformers on CPU.
    "tiny": Qwen3Config(vocab_size=4096, hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=64, rope_theta=1_000_000.0, tie_word_embeddings=True, max_position_embeddings=4096),
    "qwen3-0.6b": Qwen3Config(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, **_QWEN3_SHARED),
    "qwen3-1.7b": Qwen3Config(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, **_QWEN3_SHARED),
    "qwen3-4b": Qwen3Config(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                            **{**_QWEN3_SHARED, "num_attention_heads": 32}),
}


def named_config(name: str, **overrides) -> Qwen3Config:
    if name not in NAMED_CONFIGS:
        raise ConfigError(f"unknown model config {name!r}: choose from {', '.join(NAMED_CONFIGS)}")
    return NAMED_CONFIGS[name].replace(**overrides)

"""The embedded default model: a random-initialised Qwen3 in HF format with a locally trained tokenizer.

No pretrained weights can be downloaded on our machines, so the default writes what a real model
directory holds (safetensors, config.json, tokenizer files with a chat template) and everything
downstream runs the same conversion, training and evaluation code a real Qwen3 directory would.
"""

from __future__ import annotations

import json
from pathlib import Path

from cecl_pipeline.bootstrap.corpus import prompt_corpus
from cecl_pipeline.files import atomic_dir
from cecl_pipeline.llm.config import Qwen3Config, named_config
from cecl_pipeline.llm.tokenizer import IM_END, PAD_TOKEN, build_tokenizer, save_hf_tokenizer, special_token_ids

MANIFEST = "cecl_default.json"
RECIPE_VERSION = 1


def default_recipe(model: str, seed: int, dtype: str) -> dict:
    return {"model": model, "seed": seed, "dtype": dtype, "recipe_version": RECIPE_VERSION}


def is_current(hf_dir: Path, recipe: dict) -> bool:
    manifest = Path(hf_dir) / MANIFEST
    return manifest.exists() and json.loads(manifest.read_text()) == recipe


def write_default_hf_checkpoint(hf_dir: Path, model: str = "tiny", seed: int = 0, dtype: str = "float32") -> Qwen3Config:
    """Train the tokenizer, write random weights and config, all into ``hf_dir`` at once."""
    from cecl_pipeline.llm.hf_export import write_random_hf_checkpoint

    base = named_config(model)
    tokenizer = build_tokenizer(prompt_corpus(), vocab_size=base.vocab_size)
    ids = special_token_ids(tokenizer)
    config = base.replace(eos_token_id=ids[IM_END], pad_token_id=ids[PAD_TOKEN], bos_token_id=None)
    with atomic_dir(Path(hf_dir)) as staging:
        weights = staging / "weights"
        write_random_hf_checkpoint(config, weights, seed=seed, dtype=dtype)
        for path in weights.iterdir():
            path.rename(staging / path.name)
        weights.rmdir()
        save_hf_tokenizer(tokenizer, staging, model_max_length=config.max_position_embeddings)
        (staging / MANIFEST).write_text(json.dumps(default_recipe(model, seed, dtype), indent=2))
    return config

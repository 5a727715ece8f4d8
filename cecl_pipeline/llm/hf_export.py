"""Write Flax parameters (or fresh random ones) as an HF Qwen3 directory: safetensors + config.json.

The output loads with transformers' ``Qwen3ForCausalLM.from_pretrained``. safetensors' numpy API writes
BF16 directly from ``ml_dtypes.bfloat16`` arrays (safetensors ≥ 0.8), so no hand-written header is needed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flax.traverse_util import flatten_dict
from safetensors.numpy import save_file

from cecl_pipeline.files import atomic_dir
from cecl_pipeline.llm.checkpoint import fsync_tree
from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.convert import DTYPES, INDEX_FILE, SINGLE_FILE, to_layout
from cecl_pipeline.llm.model import INIT_STD
from cecl_pipeline.llm.param_names import expected_hf_shapes, flax_to_hf, hf_to_flax

Make = Callable[[str], np.ndarray]  # HF name → tensor in HF layout and the target dtype


def write_hf_checkpoint(params: dict, config: Qwen3Config, out_dir: Path | str, dtype: str = "float32",
                        max_shard_bytes: int | None = None) -> Path:
    """Write ``params`` (a Flax Qwen3 tree) to ``out_dir`` in HF format, replacing it whole."""
    flat = {flax_to_hf(path): array for path, array in flatten_dict(params).items()}
    shapes = expected_hf_shapes(config)
    found = {name: _hf_shape(name, a.shape) for name, a in flat.items()}
    if found != shapes:
        wrong = sorted(n for n in set(shapes) | set(found) if shapes.get(n) != found.get(n))
        raise ValueError(f"params do not match the config: {', '.join(wrong[:20])}")
    return _write(config, Path(out_dir), dtype, max_shard_bytes, lambda name: to_layout(np.asarray(flat[name]), hf_to_flax(name)[1], DTYPES[dtype]))


def write_random_hf_checkpoint(config: Qwen3Config, out_dir: Path | str, seed: int = 0, dtype: str = "float32",
                               max_shard_bytes: int | None = None) -> Path:
    """A random Qwen3 in HF format (the embedded default): normal(0.02) weights, unit norms, like ``init_params``.

    Generated tensor by tensor with numpy in HF layout, so memory stays at one shard even for 0.6B+
    shapes; the values are seeded but differ from ``init_params(config, seed)``.
    """
    rng, shapes = np.random.default_rng(seed), expected_hf_shapes(config)

    def make(name: str) -> np.ndarray:
        if len(shapes[name]) == 1:
            return np.ones(shapes[name], DTYPES[dtype])
        return (rng.standard_normal(shapes[name], np.float32) * np.float32(INIT_STD)).astype(DTYPES[dtype])

    return _write(config, Path(out_dir), dtype, max_shard_bytes, make)


def _hf_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[::-1]) if hf_to_flax(name)[1] else tuple(shape)


def _write(config: Qwen3Config, out_dir: Path, dtype: str, max_shard_bytes: int | None, make: Make) -> Path:
    """Shards are planned from shapes, then each is built, written and dropped before the next."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    shapes = expected_hf_shapes(config)
    shards = plan_shards(shapes, DTYPES[dtype].itemsize, max_shard_bytes)
    names = [SINGLE_FILE] if len(shards) == 1 else [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    with atomic_dir(out_dir) as staging:
        (staging / "config.json").write_text(json.dumps(config.replace(param_dtype=dtype).to_hf(), indent=2))
        for file, shard in zip(names, shards, strict=True):
            save_file({name: make(name) for name in shard}, staging / file, metadata={"format": "pt"})
            shutil.copymode(staging / "config.json", staging / file)  # safetensors creates files 0600, ignoring the umask
        if len(shards) > 1:
            total = sum(int(np.prod(s)) for s in shapes.values()) * DTYPES[dtype].itemsize
            weight_map = {name: file for file, shard in zip(names, shards, strict=False) for name in shard}
            (staging / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
        fsync_tree(staging)
    return out_dir


def plan_shards(shapes: dict[str, tuple[int, ...]], itemsize: int, max_shard_bytes: int | None) -> list[list[str]]:
    """Greedy groups of tensor names, each under ``max_shard_bytes`` unless one tensor alone is larger."""
    shards, size = [[]], 0
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * itemsize
        if max_shard_bytes and shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards

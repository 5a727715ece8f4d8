"""The converted JAX checkpoint directory: orbax ``params/``, HF config and tokenizer files, ``conversion.json``.

``conversion.json`` is written last, so a directory without it is incomplete and is never loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import ml_dtypes  # noqa: F401  (lets numpy resolve the dtype name "bfloat16")
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.param_names import expected_hf_shapes, hf_to_flax

MANIFEST = "conversion.json"
PARAMS = "params"


class CheckpointError(ValueError):
    """A converted checkpoint directory that is incomplete or does not match its config."""


def load_jax_checkpoint(out_dir: Path | str, dtype: str | None = None) -> tuple[Qwen3Config, dict]:
    """(config, params) from a directory written by ``hf_to_jax``; params are numpy arrays, cast to ``dtype`` if given."""
    out_dir = Path(out_dir).absolute()
    if not (out_dir / MANIFEST).is_file():
        raise CheckpointError(f"{out_dir}: no {MANIFEST}; not a complete converted checkpoint (write one with hf_to_jax)")
    manifest = json.loads((out_dir / MANIFEST).read_text())
    dtype = dtype or manifest["dtype"]
    config = Qwen3Config.from_file(out_dir / "config.json", param_dtype=dtype)
    with contextlib.closing(_checkpointer()) as checkpointer:
        flat = flatten_dict(checkpointer.restore(out_dir / PARAMS))
    for path, array in flat.items():  # cast in place, one leaf at a time, so two full copies never coexist
        flat[path] = np.asarray(array).astype(dtype, copy=False)
    _check_shapes(out_dir, config, flat)
    return config, unflatten_dict(flat)


def expected_flax_shapes(config: Qwen3Config) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Every Flax parameter path of this config and its shape, derived from the HF names."""
    shapes = {}
    for name, shape in expected_hf_shapes(config).items():
        path, transpose = hf_to_flax(name)
        shapes[path] = shape[::-1] if transpose else shape
    return shapes


def _check_shapes(out_dir: Path, config: Qwen3Config, flat: dict) -> None:
    expected, found = expected_flax_shapes(config), {path: a.shape for path, a in flat.items()}
    if found != expected:
        wrong = sorted("/".join(p) for p in set(expected) | set(found) if expected.get(p) != found.get(p))
        raise CheckpointError(f"{out_dir / PARAMS}: parameters do not match config.json: {', '.join(wrong[:20])}")


def save_params(params: dict, directory: Path) -> None:
    """Save a tree of numpy arrays with orbax into ``directory`` (which must not exist)."""
    with contextlib.closing(_checkpointer()) as checkpointer:
        checkpointer.save(Path(directory).absolute(), params)


def _checkpointer():
    import jax
    import orbax.checkpoint as ocp

    # No deep copy of host arrays: we hand orbax arrays nobody else mutates, and the copy would double peak memory.
    registry = ocp.type_handlers.create_type_handler_registry(
        (np.ndarray, ocp.type_handlers.NumpyHandler(deepcopy_host_arrays=False)), (jax.Array, ocp.type_handlers.ArrayHandler()))
    # No zstd: it took 2x the save time and ~1 GB of buffers for 0.6B bf16 weights, which barely compress.
    handler = ocp.PyTreeCheckpointHandler(use_compression=False, type_handler_registry=registry)
    return ocp.Checkpointer(handler)


def fsync_tree(directory: Path) -> None:
    """Flush every file under ``directory`` to disk before it is renamed into place."""
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

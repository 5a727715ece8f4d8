"""HF Qwen3 directory (safetensors + config.json + tokenizer) → Flax parameters saved with orbax.

Everything is validated from the safetensors headers before any tensor data is read. Tensors are
then read one at a time (safetensors' numpy API, no torch) and turned straight into their final
Flax array, so peak memory stays near one copy of the converted model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes  # registers "bfloat16" with numpy, which is how safetensors' numpy API returns BF16 tensors
import numpy as np
from flax.traverse_util import unflatten_dict
from safetensors import safe_open

from cecl_pipeline.files import atomic_dir, sha256_file
from cecl_pipeline.llm.checkpoint import MANIFEST, PARAMS, fsync_tree, save_params
from cecl_pipeline.llm.config import ConfigError, Qwen3Config
from cecl_pipeline.llm.param_names import expected_hf_shapes, hf_to_flax

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                   "added_tokens.json", "generation_config.json", "chat_template.jinja")
DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
_SOURCE_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
_TRANSPOSE_ROWS = 32  # rows per block: a [32, cols] slab and its transpose stay in cache (~10x faster than one .T copy)
_COMPARE_ROWS = 4096


class ConversionError(ValueError):
    """An HF directory we refuse to convert; the message names the file or tensor at fault."""


@dataclass(frozen=True)
class ConversionReport:
    out_dir: Path
    parameters: int
    dtype: str
    bytes_written: int
    seconds: float
    source_sha256: str


@dataclass(frozen=True)
class TensorInfo:
    file: Path
    dtype: str  # numpy name, e.g. "bfloat16"
    shape: tuple[int, ...]
    offset: int  # start of the data within the file's data section


@dataclass
class HFSource:
    """A validated HF directory: its config and where each tensor lives (headers only, no data)."""

    directory: Path
    config: Qwen3Config
    files: list[Path]
    index: Path | None
    tensors: dict[str, TensorInfo] = field(default_factory=dict)

    def names_in(self, file: Path) -> list[str]:
        """The file's tensors in on-disk order, so reads go front to back."""
        return sorted((n for n, t in self.tensors.items() if t.file == file), key=lambda n: self.tensors[n].offset)


def hf_to_jax(hf_dir: Path | str, out_dir: Path | str, dtype: str = "float32") -> ConversionReport:
    """Convert ``hf_dir`` into ``out_dir`` (params/ with orbax, config, tokenizer, conversion.json), all or nothing."""
    started = time.perf_counter()
    if dtype not in DTYPES:
        raise ConversionError(f"dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    source = inspect_hf_dir(hf_dir)
    out_dir = Path(out_dir).absolute()
    with ThreadPoolExecutor(1) as pool, atomic_dir(out_dir) as staging:
        digest = pool.submit(source_sha256, source)  # hashing overlaps the conversion; hashlib releases the GIL
        flat = convert_tensors(source, DTYPES[dtype])
        count = sum(a.size for a in flat.values())
        save_params(unflatten_dict(flat), staging / PARAMS)
        del flat
        copy_side_files(source.directory, staging)
        manifest = {"source": str(source.directory), "source_sha256": digest.result(), "dtype": dtype, "parameters": count,
                    "created_by": "cecl_pipeline.llm.convert.hf_to_jax"}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))  # written last: its presence marks a complete directory
        fsync_tree(staging)
        written = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    return ConversionReport(out_dir, count, dtype, written, time.perf_counter() - started, manifest["source_sha256"])


def describe_hf_dir(hf_dir: Path | str) -> dict:
    """Validate ``hf_dir`` (headers only) and summarise its weights: dtype, bytes, sha256, files, tensors."""
    source = inspect_hf_dir(hf_dir)
    dtypes = sorted({t.dtype for t in source.tensors.values()})
    return {"dtype": dtypes[0] if len(dtypes) == 1 else "mixed: " + ", ".join(dtypes),
            "bytes": sum(p.stat().st_size for p in source.files), "sha256": source_sha256(source),
            "files": [p.name for p in source.files], "tensors": len(source.tensors)}


def inspect_hf_dir(hf_dir: Path | str) -> HFSource:
    """Config, weight files and every tensor's header entry, checked against the config's expected shapes."""
    directory = Path(hf_dir).absolute()
    if not directory.is_dir():
        raise ConversionError(f"{directory}: not a directory")
    config = _read_config(directory)
    files, index = _weight_files(directory)
    source = HFSource(directory, config, files, index)
    for file in files:
        for name, info in read_header(file).items():
            if name in source.tensors:
                raise ConversionError(f"{file.name}: tensor {name} is also in {source.tensors[name].file.name}")
            source.tensors[name] = info
    if index is not None:
        _check_index(index, source.tensors)
    _check_tensors(source)
    return source


def _read_config(directory: Path) -> Qwen3Config:
    path = directory / "config.json"
    if not path.is_file():
        raise ConversionError(f"{path}: missing; an HF model directory holds config.json")
    try:
        return Qwen3Config.from_file(path)
    except ConfigError as err:
        raise ConversionError(str(err)) from None


def _weight_files(directory: Path) -> tuple[list[Path], Path | None]:
    """The safetensors files, from the index when there is one."""
    index = directory / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ConversionError(f"{index}: not a safetensors index with a weight_map ({err})") from None
        for shard in sorted(set(weight_map.values())):
            if not (directory / shard).is_file():
                tensor = next(n for n, s in weight_map.items() if s == shard)
                raise ConversionError(f"{index}: shard {shard} (holding {tensor}, …) is missing")
        return [directory / s for s in sorted(set(weight_map.values()))], index
    if (directory / SINGLE_FILE).is_file():
        return [directory / SINGLE_FILE], None
    raise ConversionError(f"{directory}: no weights; expected {SINGLE_FILE} or {INDEX_FILE}")


def read_header(path: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares: 8-byte little-endian length, then a JSON header."""
    with open(path, "rb") as fh:
        try:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length)) if length < 100_000_000 else None
        except (struct.error, UnicodeDecodeError, json.JSONDecodeError):
            header = None
    if not isinstance(header, dict):
        raise ConversionError(f"{path}: not a safetensors file (unreadable header)")
    header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        if entry.get("dtype") not in _SOURCE_DTYPES:
            raise ConversionError(f"{path.name}: tensor {name} has dtype {entry.get('dtype')}; expected a float type")
        tensors[name] = TensorInfo(path, _SOURCE_DTYPES[entry["dtype"]], tuple(entry["shape"]), entry["data_offsets"][0])
    return tensors


def _check_index(index: Path, tensors: dict[str, TensorInfo]) -> None:
    weight_map = json.loads(index.read_text())["weight_map"]
    wrong = [f"{n} (index: {s})" for n, s in weight_map.items() if n not in tensors or tensors[n].file.name != s]
    if wrong:
        raise ConversionError(f"{index}: tensors not in the shard the index names: {_listing(wrong)}")


def _check_tensors(source: HFSource) -> None:
    """Refuse unexpected, missing and wrongly shaped tensors, listing every one."""
    expected = expected_hf_shapes(source.config)
    if source.config.tie_word_embeddings and "lm_head.weight" in source.tensors:
        expected["lm_head.weight"] = expected["model.embed_tokens.weight"]  # allowed if equal to the embedding; checked on read
    problems = []
    if unexpected := sorted(set(source.tensors) - set(expected)):
        problems.append(f"unexpected tensors: {_listing(unexpected)}")
    if missing := sorted(set(expected) - set(source.tensors), key=list(expected).index):
        problems.append(f"missing tensors: {_listing(missing)}")
    for name, info in source.tensors.items():
        if name in expected and info.shape != expected[name]:
            problems.append(f"{info.file.name}: tensor {name} has shape {info.shape}, expected {expected[name]}")
    if problems:
        raise ConversionError(f"{source.directory} does not match its config.json:\n  " + "\n  ".join(problems))


def _listing(names: list[str], limit: int = 20) -> str:
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def convert_tensors(source: HFSource, dtype: np.dtype) -> dict[tuple[str, ...], np.ndarray]:
    """Flat {Flax path: array} in ``dtype``, reading one tensor at a time (no HF copy is kept)."""
    flat = {}
    for file in source.files:
        # pread, not mmap: mapped pages would count toward RSS until the file is closed (a second model copy).
        with safe_open(file, framework="np", backend="pread") as handle:
            for name in source.names_in(file):
                if name == "lm_head.weight" and source.config.tie_word_embeddings:
                    _check_tied_head(source)
                    continue
                path, transpose = hf_to_flax(name)
                flat[path] = to_layout(handle.get_tensor(name), transpose, dtype)
    return flat


def to_layout(array: np.ndarray, transpose: bool, dtype: np.dtype) -> np.ndarray:
    """Cast and (optionally) transpose into a fresh C-contiguous array; transposes run in the narrower dtype."""
    if np.dtype(dtype).itemsize < array.itemsize:
        array = array.astype(dtype)
    if transpose:
        array = transposed(array)
    # Contiguous always: safetensors' save_file writes the raw buffer and silently ignores strides.
    return np.ascontiguousarray(array.astype(dtype, copy=False))


def transposed(array: np.ndarray) -> np.ndarray:
    """C-contiguous ``array.T`` for a 2-D array, copied in row blocks (numpy's strided .T copy thrashes the cache)."""
    bits = array.view(f"u{array.itemsize}")  # only bits move: numpy's integer copy loops beat ml_dtypes' bfloat16 ones
    out = np.empty(bits.shape[::-1], bits.dtype)
    for start in range(0, bits.shape[0], _TRANSPOSE_ROWS):
        out[:, start:start + _TRANSPOSE_ROWS] = bits[start:start + _TRANSPOSE_ROWS].T
    return out.view(array.dtype)


def _check_tied_head(source: HFSource) -> None:
    """A tied checkpoint may still carry lm_head.weight; it must equal the embedding (compared in row blocks)."""
    head, embed = source.tensors["lm_head.weight"], source.tensors["model.embed_tokens.weight"]
    with safe_open(head.file, framework="np", backend="pread") as h, safe_open(embed.file, framework="np", backend="pread") as e:
        hs, es = h.get_slice("lm_head.weight"), e.get_slice("model.embed_tokens.weight")
        for start in range(0, head.shape[0], _COMPARE_ROWS):
            rows = slice(start, min(start + _COMPARE_ROWS, head.shape[0]))  # safetensors refuses out-of-range ends
            if not np.array_equal(hs[rows].astype(np.float32), es[rows].astype(np.float32)):
                raise ConversionError(f"{head.file.name}: lm_head.weight differs from model.embed_tokens.weight "
                                      f"(first at row ≥ {start}) but config.json has tie_word_embeddings=true")


def source_sha256(source: HFSource) -> str:
    """sha256 over 'name sha256' lines of the index and every weight file (each file stream-hashed)."""
    lines = [f"{p.name} {sha256_file(p, chunk=8 << 20)}" for p in ([source.index] if source.index else []) + source.files]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def copy_side_files(source: Path, target: Path) -> None:
    for name in ("config.json", *TOKENIZER_FILES):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)

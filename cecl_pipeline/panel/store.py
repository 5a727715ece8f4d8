"""Drop files in, processed Parquet out: locating inputs, writing outputs atomically, summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cecl_pipeline.files import atomic_path
from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.schema import PANEL_SCHEMA, RATE_COLUMN
from cecl_pipeline.settings import DataLayout

PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


def find_drop_file(layout: DataLayout, quarter: str) -> Path:
    """The quarter's drop file; exactly one of ``<Q>.csv`` / ``<Q>.parquet`` must exist."""
    candidates = [layout.raw_nco_dir / f"{quarter}{suffix}" for suffix in (".csv", ".parquet")]
    present = [p for p in candidates if p.exists()]
    if not present:
        raise DropFileError(candidates[0], f"no drop file for {quarter}: expected {candidates[0].name} or {candidates[1].name} in {layout.raw_nco_dir}")
    if len(present) > 1:
        raise DropFileError(present[0], f"two drop files for {quarter} ({', '.join(p.name for p in present)}): keep one")
    return present[0]


def _drop_file_paths(layout: DataLayout) -> list[Path]:
    """What raw/nco/ holds that looks like a drop file (CSV or Parquet, not hidden), by name."""
    if not layout.raw_nco_dir.exists():
        return []
    return sorted(p for p in layout.raw_nco_dir.iterdir() if p.suffix in (".csv", ".parquet") and not p.name.startswith("."))


def drop_file_quarters(layout: DataLayout) -> list[str]:
    return sorted({p.stem for p in _drop_file_paths(layout)})


def drop_file_versions(layout: DataLayout) -> dict[str, str]:
    """Every drop file's name → a version (mtime and size) that changes when the file is replaced."""
    versions = {}
    for path in _drop_file_paths(layout):
        if path.is_file():
            stat = path.stat()
            versions[path.name] = f"{stat.st_mtime_ns}-{stat.st_size}"
    return versions


def write_parquet(table: pa.Table, path: Path) -> Path:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)
    return path


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` (its index left out) as Parquet at ``path``, atomically, without pandas' schema metadata."""
    return write_parquet(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None), path)


def write_panel(frame: pd.DataFrame, path: Path) -> Path:
    ordered = frame.sort_values(["entity_id", "segment"], kind="stable").reset_index(drop=True)
    return write_parquet(pa.Table.from_pandas(ordered, schema=PANEL_SCHEMA, preserve_index=False).replace_schema_metadata(None), path)


def read_panel(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def read_panels(paths: list[Path]) -> pd.DataFrame:
    tables = [pq.read_table(p) for p in paths]
    return pa.concat_tables(tables).to_pandas() if tables else PANEL_SCHEMA.empty_table().to_pandas()


def panel_summary(frame: pd.DataFrame) -> dict:
    rate = frame[RATE_COLUMN]
    finite = rate[np.isfinite(rate)]
    return {
        "rows": len(frame),
        "entities": int(frame["entity_id"].nunique()),
        "segments": sorted(frame["segment"].unique().tolist()),
        "nco_rate": {
            **{k: (round(float(v), 4) if pd.notna(v) else None) for k, v in finite.describe().items() if k != "count"},
            "missing_or_infinite": int(len(rate) - len(finite)),
        },
    }

"""Read CSV or Parquet files into typed frames, naming file, row and column for anything unreadable.

Row numbers follow what a person sees: for CSV the line number with the header on line 1, for
Parquet the 1-based row. They travel with the data as ``source_row`` so later checks can cite them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.schema import (
    KEY_COLUMNS,
    MACRO_COLUMNS,
    MACRO_QUARTER,
    NUMERIC_COLUMNS,
    PANEL_COLUMNS,
    REQUIRED_COLUMNS,
)
from cecl_pipeline.quarters import normalise_quarter_column

SUPPORTED_SUFFIXES = (".csv", ".parquet")


def read_raw_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as-is, plus a ``__row__`` column of human row numbers."""
    path = Path(path)
    if not path.exists():
        raise DropFileError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path)
    elif suffix == ".parquet":
        frame = _read_parquet(path)
    else:
        raise DropFileError(path, f"unsupported file type {suffix!r}: use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if frame.empty:
        raise DropFileError(path, "the file has a header but no data rows")
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    if not data.strip():
        raise DropFileError(path, "the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _encoding_error(path, data, err) from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.ParserError as err:
        raise DropFileError(path, f"not a well-formed CSV: {err}") from None
    except pd.errors.EmptyDataError:
        raise DropFileError(path, "the file is empty") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = _data_line_numbers(data)
    if len(lines) != len(frame):  # quoted fields spanning lines: fall back to record numbers
        lines = np.arange(2, len(frame) + 2)
    frame["__row__"] = lines
    return frame


def _data_line_numbers(data: bytes) -> np.ndarray:
    """Line numbers (1-based) of the non-blank lines after the header, without a Python loop."""
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(raw)]))
    lengths = ends - starts
    # a line is blank if empty or just "\r"
    last_char = raw[np.maximum(ends - 1, 0)] if len(raw) else np.array([], dtype=np.uint8)
    blank = (lengths == 0) | ((lengths == 1) & (last_char == 13))
    numbers = np.flatnonzero(~blank) + 1
    return numbers[1:]  # drop the header line


def _encoding_error(path: Path, data: bytes, err: UnicodeDecodeError) -> DropFileError:
    line_start = data.rfind(b"\n", 0, err.start) + 1
    line_no = data.count(b"\n", 0, err.start) + 1
    column_index = data.count(b",", line_start, err.start)
    header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().split(",")
    column = header[column_index].strip() if column_index < len(header) else None
    bad = data[err.start : err.end]
    return DropFileError(
        path,
        "the file is not UTF-8 text; save it as UTF-8",
        [Offence(line_no, column, bad.hex(" "), f"byte(s) 0x{bad.hex()} at offset {err.start} are not UTF-8")],
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise DropFileError(path, f"not a readable Parquet file (truncated or corrupt): {err}") from None
    frame = table.to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    frame["__row__"] = np.arange(1, len(frame) + 1)
    return frame


def require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = [c for c in frame.columns if c != "__row__"]
        raise DropFileError(path, f"missing required column(s) {', '.join(missing)}; the file has: {', '.join(found) or 'none'}")


def _collect(offences: list[Offence], counts: list[int], frame: pd.DataFrame, mask: pd.Series, column: str, reason: str) -> None:
    bad = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    if len(bad):
        counts.append(len(bad))
        rows = frame["__row__"].to_numpy()
        values = frame[column].to_numpy()
        offences.extend(Offence(int(rows[i]), column, values[i], reason) for i in bad[:20])


def parse_numbers(frame: pd.DataFrame, columns: tuple[str, ...], offences: list[Offence], counts: list[int]) -> dict[str, pd.Series]:
    """Coerce text columns to float64; text that is not a number (NaN/inf are numbers) is an offence."""
    parsed = {}
    for column in columns:
        if column not in frame.columns:
            parsed[column] = pd.Series(np.nan, index=frame.index, dtype="float64")
            continue
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        if not pd.api.types.is_numeric_dtype(raw.dtype):
            text = raw.astype("string").str.strip()
            given = text.notna() & (text != "")
            unparsed = given & values.isna() & ~text.str.lower().isin(["nan", "na", "null"])
            _collect(offences, counts, frame, unparsed, column, "not a number")
        parsed[column] = values
    return parsed


def read_panel_file(path: Path) -> pd.DataFrame:
    """Read a long-format NCO file (any quarters) into the panel schema, with provenance columns."""
    path = Path(path)
    frame = read_raw_table(path)
    require_columns(frame, path, REQUIRED_COLUMNS)
    offences: list[Offence] = []
    counts: list[int] = []
    out = pd.DataFrame(index=frame.index)
    for column in ("entity_id", "segment"):
        text = frame[column].astype("string").str.strip()
        _collect(offences, counts, frame, text.isna() | (text == ""), column, "missing value")
        out[column] = text
    quarter = normalise_quarter_column(frame["quarter"])
    _collect(offences, counts, frame, quarter.isna(), "quarter", "not a quarter (use a label like 2019Q1)")
    out["quarter"] = quarter
    for column, values in parse_numbers(frame, NUMERIC_COLUMNS, offences, counts).items():
        out[column] = values
    if offences:
        offences.sort(key=lambda o: (o.row or 0))
        raise DropFileError(path, "some values cannot be read", offences, total=sum(counts))
    out["source_file"] = path.name
    out["source_row"] = frame["__row__"].astype("int64")
    return out[list(PANEL_COLUMNS)].reset_index(drop=True)


def read_macro_file(path: Path) -> pd.DataFrame:
    """Read a macro history CSV/Parquet (one row per quarter) into the macro schema plus provenance, sorted by quarter."""
    path = Path(path)
    frame = read_raw_table(path)
    require_columns(frame, path, (MACRO_QUARTER, *MACRO_COLUMNS))
    offences: list[Offence] = []
    counts: list[int] = []
    quarter = normalise_quarter_column(frame[MACRO_QUARTER])
    _collect(offences, counts, frame, quarter.isna(), MACRO_QUARTER, "not a quarter (use a label like 2019Q1)")
    values = parse_numbers(frame, MACRO_COLUMNS, offences, counts)
    if offences:
        raise DropFileError(path, "some values cannot be read", offences, total=sum(counts))
    out = pd.DataFrame({MACRO_QUARTER: quarter, **values, "source_file": path.name, "source_row": frame["__row__"].astype("int64")})
    return out.sort_values(MACRO_QUARTER, kind="stable").reset_index(drop=True)


def panel_keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[list(KEY_COLUMNS)])

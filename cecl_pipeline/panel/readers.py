"""Read CSV or Parquet files into typed frames, naming file, row and column for anything unreadable.

Row numbers follow what a person sees: for CSV the line number with the header on line 1, for
Parquet the 1-based row. They travel with the data as ``source_row`` so later checks can cite them.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.schema import (
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
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DropFileError(path, "the file is UTF-16 text; save it as UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _encoding_error(path, data, err) from None
    # A line of only spaces is a blank line to a person; make it one for the parser too.
    data = _WHITESPACE_LINE.sub(rb"\1", data.removeprefix(b"\xef\xbb\xbf"))
    try:
        frame = _csv_as_text(data)
    except (pa.ArrowInvalid, ValueError) as err:
        raise _csv_structure_error(path, data, err) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = _data_line_numbers(data)
    if len(lines) != len(frame):  # cannot happen without quoted line breaks, which the parser refuses
        lines = np.arange(2, len(frame) + 2)
    frame["__row__"] = lines
    return frame


_WHITESPACE_LINE = re.compile(rb"(?m)^[ \t]+(\r?)$")


def _csv_as_text(data: bytes) -> pd.DataFrame:
    """Every column as text, empty cells as "" (pyarrow: fast, no type guessing)."""
    header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")]))
    if len(set(header)) != len(header):
        raise ValueError(f"duplicate column names in the header: {', '.join(header)}")
    options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    return pacsv.read_csv(io.BytesIO(data), convert_options=options).to_pandas()


def _csv_structure_error(path: Path, data: bytes, err: Exception) -> DropFileError:
    """Find the first malformed line (only on this error path, so a line-by-line scan is fine)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True)
    try:
        width = len(next(reader))
        for record in reader:
            if record and len(record) != width:
                reason = f"{len(record)} field(s), but the header has {width}"
                return DropFileError(path, "not a well-formed CSV", [Offence(reader.line_num, None, None, reason)])
    except csv.Error as csv_err:
        return DropFileError(path, "not a well-formed CSV", [Offence(reader.line_num, None, None, str(csv_err))])
    return DropFileError(path, f"not a well-formed CSV: {err}")


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
    line_end = data.find(b"\n", err.start)
    line_no = data.count(b"\n", 0, err.start) + 1
    line = data[line_start : line_end if line_end >= 0 else len(data)].decode("utf-8", errors="surrogateescape")
    fields = next(csv.reader([line]), [])
    header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()]), [])
    bad_field = next((i for i, f in enumerate(fields) if any("\udc80" <= ch <= "\udcff" for ch in f)), None)
    column = header[bad_field].strip() if bad_field is not None and bad_field < len(header) else None
    bad = data[err.start : err.end]
    return DropFileError(
        path,
        "the file is not UTF-8 text; save it as UTF-8",
        [Offence(line_no, column, None, f"byte(s) 0x{bad.hex()} at offset {err.start} are not UTF-8")],
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


def read_columns(path: Path) -> list[str]:
    """Just the column names, without parsing the body; the full readers report any damage."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            return [str(c).strip() for c in pq.read_schema(path).names]
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return [c.strip() for c in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, pa.ArrowInvalid):
        return read_raw_table(path).columns.drop("__row__").tolist()


def require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = [c for c in frame.columns if c != "__row__"]
        raise DropFileError(path, f"missing required column(s) {', '.join(missing)}; the file has: {', '.join(found) or 'none'}")


def collect_offences(offences: list[Offence], counts: list[int], frame: pd.DataFrame, mask: pd.Series, column: str, reason: str) -> None:
    """Record the rows of ``frame`` where ``mask`` holds as offences in ``column`` (the first 20 listed, all counted)."""
    bad = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    if len(bad):
        counts.append(len(bad))
        rows = frame["__row__"].to_numpy()
        values = frame[column].to_numpy()
        offences.extend(Offence(int(rows[i]), column, _plain(values[i]), reason) for i in bad[:20])


def required_text(frame: pd.DataFrame, column: str, offences: list[Offence], counts: list[int]) -> pd.Series:
    """``column`` as stripped text; a blank or missing cell is an offence ("missing value")."""
    text = frame[column].astype("string").str.strip()
    collect_offences(offences, counts, frame, text.isna() | (text == ""), column, "missing value")
    return text


def _plain(value: object) -> object:
    """numpy scalars and arrays as plain Python values, so messages read 5, not np.int64(5)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def parse_numbers(frame: pd.DataFrame, columns: tuple[str, ...], offences: list[Offence], counts: list[int]) -> dict[str, pd.Series]:
    """Coerce text columns to float64; text that is not a number (NaN/inf are numbers) is an offence."""
    parsed = {}
    for column in columns:
        if column not in frame.columns:
            parsed[column] = pd.Series(np.nan, index=frame.index, dtype="float64")
            continue
        raw = frame[column]
        if _is_not_a_number_type(raw):
            collect_offences(offences, counts, frame, raw.notna(), column, f"a {raw.dtype} column; expected numbers")
            parsed[column] = pd.Series(np.nan, index=frame.index, dtype="float64")
            continue
        if (fast := _cast_text_to_float(raw)) is not None:
            parsed[column] = fast
            continue
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        if not pd.api.types.is_numeric_dtype(raw.dtype):
            text = raw.astype("string").str.strip()
            given = text.notna() & (text != "")
            unparsed = given & values.isna() & ~text.str.lower().isin(["nan", "na", "null"])
            collect_offences(offences, counts, frame, unparsed, column, "not a number")
        parsed[column] = values
    return parsed


def _is_not_a_number_type(raw: pd.Series) -> bool:
    """Booleans and dates convert to numbers silently; in a rate or an amount they are a mistake."""
    kind = raw.dtype
    return pd.api.types.is_bool_dtype(kind) or pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_timedelta64_dtype(kind)


def _cast_text_to_float(raw: pd.Series) -> pd.Series | None:
    """The fast path: pyarrow parses every cell (blank → NaN); None when any cell is not a number."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.astype("float64")
    text = pc.utf8_trim_whitespace(pa.array(raw.astype("string"), pa.string()))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        values = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        return None
    return pd.Series(values.to_numpy(zero_copy_only=False), index=raw.index, dtype="float64")


def read_panel_file(path: Path) -> pd.DataFrame:
    """Read a long-format NCO file (any quarters) into the panel schema, with provenance columns."""
    path = Path(path)
    frame = read_raw_table(path)
    require_columns(frame, path, REQUIRED_COLUMNS)
    offences: list[Offence] = []
    counts: list[int] = []
    out = pd.DataFrame(index=frame.index)
    for column in ("entity_id", "segment"):
        out[column] = required_text(frame, column, offences, counts)
    quarter = normalise_quarter_column(frame["quarter"])
    collect_offences(offences, counts, frame, quarter.isna(), "quarter", "not a quarter (use a label like 2019Q1)")
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
    collect_offences(offences, counts, frame, quarter.isna(), MACRO_QUARTER, "not a quarter (use a label like 2019Q1)")
    values = parse_numbers(frame, MACRO_COLUMNS, offences, counts)
    if offences:
        raise DropFileError(path, "some values cannot be read", offences, total=sum(counts))
    out = pd.DataFrame({MACRO_QUARTER: quarter, **values, "source_file": path.name, "source_row": frame["__row__"].astype("int64")})
    return out.sort_values(MACRO_QUARTER, kind="stable").reset_index(drop=True)

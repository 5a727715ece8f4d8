"""Split a history file into quarterly drop files (``raw/nco/<YYYYQn>.csv``) and store the macro table.

Accepted inputs: the long panel format (entity_id, segment, quarter, nco_rate, …), FRED's CSV download
(``observation_date`` plus one column per series id) and the macro history table. Every quarter is merged
and checked for conflicts before anything is written, so a refused import leaves the drop folder as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from cecl_pipeline.files import atomic_path
from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.readers import parse_numbers, read_columns, read_macro_file, read_panel_file, read_raw_table
from cecl_pipeline.panel.schema import KEY_COLUMNS, MACRO_COLUMNS, MACRO_QUARTER, NUMERIC_COLUMNS, PANEL_COLUMNS, RATE_COLUMN
from cecl_pipeline.quarters import normalise_quarter_column
from cecl_pipeline.settings import DataLayout

# FRED series ids for all-commercial-bank charge-off rates (percent, annualised) → our segment names.
FRED_SERIES_SEGMENTS = {
    "CORCCACBS": "credit_card",
    "CORCREXFACBS": "commercial_real_estate",
    "CORSFRMACBS": "residential_mortgage",
    "CORBLACBS": "commercial_industrial",
    "CORCACBS": "consumer",
    "CORALACBS": "all_loans",
}
FRED_DATE_COLUMNS = ("observation_date", "DATE")
DEFAULT_FRED_ENTITY = "US_COMMERCIAL_BANKS"
KINDS = ("auto", "long", "fred", "macro")


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    skipped_missing_rate: int = 0
    written: list[Path] = field(default_factory=list)
    quarters: list[str] = field(default_factory=list)


def detect_kind(path: Path) -> str:
    columns = set(read_columns(path))
    if {"entity_id", "segment", "quarter", RATE_COLUMN} <= columns:
        return "long"
    if columns & set(FRED_DATE_COLUMNS):
        return "fred"
    if MACRO_QUARTER in columns and columns & set(MACRO_COLUMNS):
        return "macro"
    raise DropFileError(
        Path(path),
        "cannot tell the format: expected the long panel format (entity_id, segment, quarter, nco_rate), "
        "a FRED download (observation_date + series columns) or the macro table (quarter + macro columns)",
    )


def read_fred_file(path: Path, series_segments: dict[str, str] | None = None, entity_id: str = DEFAULT_FRED_ENTITY) -> pd.DataFrame:
    """FRED CSV (one column per series id) → long panel rows; unknown series ids are refused."""
    path = Path(path)
    frame = read_raw_table(path)
    mapping = {**FRED_SERIES_SEGMENTS, **(series_segments or {})}
    date_column = next(c for c in FRED_DATE_COLUMNS if c in frame.columns)
    series = [c for c in frame.columns if c not in (date_column, "__row__")]
    unknown = [s for s in series if s not in mapping]
    if unknown:
        raise DropFileError(path, f"no segment for FRED series {', '.join(unknown)}: pass --series ID=segment")
    offences: list[Offence] = []
    counts: list[int] = []
    quarter = normalise_quarter_column(frame[date_column].astype("string").str.slice(0, 10))
    bad = quarter.isna().to_numpy()
    if bad.any():
        counts.append(int(bad.sum()))
        rows = frame["__row__"].to_numpy()
        offences += [Offence(int(rows[i]), date_column, frame[date_column].iloc[i], "not a quarter-start date") for i in np.flatnonzero(bad)[:20]]
    # FRED writes "." for a missing observation
    cleaned = frame[series].replace(".", "")
    cleaned["__row__"] = frame["__row__"]
    values = parse_numbers(cleaned, tuple(series), offences, counts)
    if offences:
        raise DropFileError(path, "some values cannot be read", offences, total=sum(counts))
    parts = [
        pd.DataFrame(
            {"entity_id": entity_id, "segment": mapping[s], "quarter": quarter, RATE_COLUMN: values[s], "source_row": frame["__row__"]}
        )
        for s in series
    ]
    long = pd.concat(parts, ignore_index=True)
    for column in NUMERIC_COLUMNS[1:]:
        long[column] = np.nan
    long["source_file"] = path.name
    return long[list(PANEL_COLUMNS)]


def import_history(
    path: Path,
    layout: DataLayout,
    kind: str = "auto",
    series_segments: dict[str, str] | None = None,
    entity_id: str = DEFAULT_FRED_ENTITY,
    replace: bool = False,
) -> ImportReport:
    """Import one file into the drop folder (NCO) or the macro table; returns what was written."""
    path = Path(path)
    kind = detect_kind(path) if kind == "auto" else kind
    if kind == "macro":
        return import_macro(path, layout)
    panel = read_panel_file(path) if kind == "long" else read_fred_file(path, series_segments, entity_id)
    missing_rate = panel[RATE_COLUMN].isna()
    report = ImportReport(kind=kind, rows=int((~missing_rate).sum()), skipped_missing_rate=int(missing_rate.sum()))
    merged = _merge_with_drop_files(panel[~missing_rate], layout, path, replace)
    for quarter, frame in merged.items():
        report.written.append(write_drop_file(frame, layout.raw_nco_dir / f"{quarter}.csv"))
        report.quarters.append(quarter)
    return report


def import_macro(path: Path, layout: DataLayout) -> ImportReport:
    macro = read_macro_file(path)
    write_csv_atomic(macro, layout.macro_csv)
    return ImportReport(kind="macro", rows=len(macro), written=[layout.macro_csv], quarters=macro[MACRO_QUARTER].tolist())


def _merge_with_drop_files(panel: pd.DataFrame, layout: DataLayout, source: Path, replace: bool) -> dict[str, pd.DataFrame]:
    """Per quarter: the new rows merged with any existing drop file; conflicting values are refused."""
    merged: dict[str, pd.DataFrame] = {}
    conflicts: list[Offence] = []
    for quarter, rows in panel.groupby("quarter", sort=True):
        existing = _existing_drop_file(layout, quarter)
        if existing is not None and not replace:
            combined = pd.concat([existing, rows], ignore_index=True)
            conflicts += _conflicts(combined, source)
            rows = combined.drop_duplicates(list(KEY_COLUMNS), keep="last")
        merged[quarter] = rows.drop_duplicates(list(KEY_COLUMNS), keep="last")
    if conflicts:
        raise DropFileError(
            source,
            "values differ from the existing drop files for the same entity, segment and quarter; use --replace to overwrite them",
            conflicts[:20],
            total=len(conflicts),
        )
    return merged


def _existing_drop_file(layout: DataLayout, quarter: str) -> pd.DataFrame | None:
    for suffix in (".csv", ".parquet"):
        path = layout.raw_nco_dir / f"{quarter}{suffix}"
        if path.exists():
            return read_panel_file(path)
    return None


def _conflicts(combined: pd.DataFrame, source: Path) -> list[Offence]:
    keys = list(KEY_COLUMNS)
    dup = combined[combined.duplicated(keys, keep=False)]
    if dup.empty:
        return []
    spread = dup.groupby(keys, sort=True)[RATE_COLUMN].nunique(dropna=False)
    clashing = spread[spread > 1].index
    new_rows = dup[dup["source_file"] == source.name].set_index(keys).loc[clashing].reset_index()
    return [
        Offence(int(r.source_row), RATE_COLUMN, r.nco_rate, f"{r.entity_id}/{r.segment}/{r.quarter} already has another value")
        for r in new_rows.head(20).itertuples()
    ]


def write_drop_file(frame: pd.DataFrame, path: Path) -> Path:
    """Write one quarter's rows in the drop format, sorted, optional amount columns only when present."""
    columns = ["entity_id", "segment", "quarter", RATE_COLUMN] + [c for c in NUMERIC_COLUMNS[1:] if frame[c].notna().any()]
    ordered = frame.sort_values(["entity_id", "segment"], kind="stable")[columns]
    return write_csv_atomic(ordered, path)


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return path

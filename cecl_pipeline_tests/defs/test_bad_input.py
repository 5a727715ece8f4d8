"""Malformed drop files: a clear error or a failed blocking check that names file, row and column.

A baseline (macro table plus accepted ``nco_panel`` 2018Q1–2018Q4) is built once per module in a
template folder. Each case copies it, replaces the 2019Q1 drop file with a malformed one and runs
``nco_panel`` + ``nco_prompts`` for 2019Q1 as one real Dagster run. Then, whatever the case:

* the accepted ``processed/nco_panel/2019Q1.parquet`` does not exist and ``nco_prompts`` was not built;
* every file that was under ``processed/`` before the run is byte-identical (sha256);
* an "error" case fails the step with a ``dg.Failure`` whose description names the file, the row
  (CSV line with the header on line 1, or 1-based Parquet row) and the column, and writes nothing;
* a "check" case fails exactly the expected blocking check, whose ``first_offending_rows`` table
  cites the file, row and column, and the data goes to ``processed/rejected/`` only.

Row numbers are not hard-coded: each builder finds them in the bytes it wrote (with the ``csv``
module's own line counting, or the position in the Parquet table read back).

The files an allowance is booked on (portfolio, overlays) have their own corpus in
test_bad_booking_input.py, whose template needs a trained policy.

"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecl_pipeline.bootstrap.default_data import write_synthetic
from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.files import sha256_file
from cecl_pipeline.panel.validation import PANEL_CHECKS
from cecl_pipeline.settings import DataLayout

BASELINE_QUARTERS = ("2018Q1", "2018Q2", "2018Q3", "2018Q4")
BAD_QUARTER = "2019Q1"
CSV_NAME = f"{BAD_QUARTER}.csv"
PARQUET_NAME = f"{BAD_QUARTER}.parquet"
BLOCKING = {s.name for s in PANEL_CHECKS if s.blocking}
MIN_CORPUS = 15

# --------------------------------------------------------------------------------------------
# The baseline: built once, copied per case
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    root: Path
    hashes: dict[str, str]  # path relative to processed/ → sha256, after the baseline runs


def _data(root: Path) -> Path:
    return root / "data"


def _home(root: Path) -> Path:
    return root / "dagster_home"


def _hashes(processed: Path) -> dict[str, str]:
    return {p.relative_to(processed).as_posix(): sha256_file(p) for p in sorted(processed.rglob("*")) if p.is_file()}


def _set_env(mp: pytest.MonkeyPatch, root: Path) -> None:
    mp.setenv("CECL_DATA_DIR", str(_data(root)))
    mp.setenv("DAGSTER_HOME", str(_home(root)))
    mp.delenv("CECL_SYNTHETIC", raising=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Template:
    """Same data as the ``synthetic_layout`` fixture (8 banks × 4 segments, 2016Q1–2019Q4), with the
    macro table and nco_panel 2018Q1–2018Q4 materialized on a real persistent instance."""
    root = tmp_path_factory.mktemp("bad_input_template")
    _data(root).mkdir()
    _home(root).mkdir()
    layout = DataLayout(_data(root))
    write_synthetic(layout, n_banks=8, seed=3, first="2016Q1", last="2019Q4")
    with pytest.MonkeyPatch.context() as mp:
        _set_env(mp, root)
        with dg.instance_for_test(temp_dir=str(_home(root))) as instance:
            result = run_assets(["macro_history"], None, instance)
            assert result.success, _failure_description(result)
            for quarter in BASELINE_QUARTERS:
                result = run_assets(["nco_panel"], quarter, instance)
                assert result.success, _failure_description(result)
                assert all(e.passed for e in result.get_asset_check_evaluations()), quarter
    hashes = _hashes(layout.processed_dir)
    assert {f"nco_panel/{q}.parquet" for q in BASELINE_QUARTERS} | {"macro_history.parquet"} <= set(hashes)
    assert not layout.panel_parquet(BAD_QUARTER).exists()
    return Template(root, hashes)


@pytest.fixture
def workspace(template, tmp_path, monkeypatch):
    """A private copy of the baseline (data and Dagster home) with the environment pointing at it."""
    root = tmp_path / "case"
    shutil.copytree(template.root, root)
    _set_env(monkeypatch, root)
    with dg.instance_for_test(temp_dir=str(_home(root))) as instance:
        yield DataLayout(_data(root)), instance


# --------------------------------------------------------------------------------------------
# Building malformed drop files
# --------------------------------------------------------------------------------------------


class Drop:
    """The good 2019Q1 drop file as bytes, records and a typed frame, plus writers for bad versions."""

    def __init__(self, layout: DataLayout):
        self.layout = layout
        self.csv_path = layout.raw_nco_dir / CSV_NAME
        self.parquet_path = layout.raw_nco_dir / PARQUET_NAME
        self.good = self.csv_path.read_bytes()
        records = list(csv.reader(io.StringIO(self.good.decode("utf-8"))))
        self.header: list[str] = records[0]
        self.rows: list[list[str]] = records[1:]
        self.frame = pd.read_csv(io.BytesIO(self.good))

    def col(self, name: str) -> int:
        return self.header.index(name)

    # ---- CSV ----
    def csv_bytes(self, header: list[str], rows: list[list[str]]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")

    def write_csv(self, header: list[str] | None = None, rows: list[list[str]] | None = None) -> Path:
        return self.write_bytes(self.csv_bytes(self.header if header is None else header, self.rows if rows is None else rows))

    def edit(self, row_index: int, column: str, value: str) -> Path:
        rows = [list(r) for r in self.rows]
        rows[row_index][self.col(column)] = value
        return self.write_csv(rows=rows)

    def write_bytes(self, data: bytes, name: str = CSV_NAME) -> Path:
        path = self.layout.raw_nco_dir / name
        path.write_bytes(data)
        return path

    # ---- Parquet ----
    def write_parquet(self, frame: pd.DataFrame | None = None, *, keep_csv: bool = False) -> Path:
        table = pa.Table.from_pandas(self.frame if frame is None else frame, preserve_index=False)
        pq.write_table(table, self.parquet_path)
        if not keep_csv:
            self.csv_path.unlink()
        return self.parquet_path

    def parquet_bytes(self, frame: pd.DataFrame | None = None) -> bytes:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(self.frame if frame is None else frame, preserve_index=False), buf)
        return buf.getvalue()


def csv_lines_where(path: Path, test: Callable[[dict[str, str]], bool]) -> list[int]:
    """1-based line numbers (header = line 1) of the records in the file that satisfy ``test``.

    Uses the csv module's own line counter on the written bytes (decoded as Latin-1, which never
    fails and keeps every newline where it is), independent of the product's row numbering.
    """
    reader = csv.reader(io.StringIO(path.read_bytes().decode("latin-1"), newline=""))
    header = [h.strip() for h in next(reader)]
    found = []
    for record in reader:
        padded = record + [None] * (len(header) - len(record))  # a short record's missing fields are None
        if record and test(dict(zip(header, padded, strict=False))):
            found.append(reader.line_num)
    return found


def csv_line_where(path: Path, test: Callable[[dict[str, str]], bool]) -> int:
    (line,) = csv_lines_where(path, test)
    return line


def parquet_rows_where(path: Path, test: Callable[[pd.DataFrame], pd.Series]) -> list[int]:
    frame = pq.read_table(path).to_pandas()
    return [int(i) + 1 for i in np.flatnonzero(test(frame).to_numpy(dtype=bool, na_value=False))]


def first_non_utf8_line(path: Path) -> int:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return data.count(b"\n", 0, err.start) + 1
    raise AssertionError(f"{path.name} is valid UTF-8")


# --------------------------------------------------------------------------------------------
# What each case expects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    kind: str  # "error": the step fails with a clear message; "check": a blocking check fails
    files: tuple[str, ...] = (CSV_NAME,)  # file names the message / offending-row table must name
    rows: tuple[int, ...] = ()  # rows that must be cited (as "row N")
    column: str | None = None  # the column cited (with the row, when rows are given)
    check: str | None = None  # for kind="check": the one blocking check that fails
    text: tuple[str, ...] = ()  # further fragments the error message must hold (the why)
    not_rows: tuple[int, ...] = ()  # good rows that must not be blamed


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Drop], Expect]
    why: str = ""


def _error(**kw) -> Expect:
    return Expect(kind="error", **kw)


def _check(check: str, **kw) -> Expect:
    return Expect(kind="check", check=check, **kw)


# ---- CSV: structure and encoding ----


def missing_nco_rate_column(d: Drop) -> Expect:
    keep = [i for i, c in enumerate(d.header) if c != "nco_rate"]
    d.write_csv([d.header[i] for i in keep], [[r[i] for i in keep] for r in d.rows])
    return _error(column="nco_rate", text=("missing required column",))


def missing_entity_id_column(d: Drop) -> Expect:
    keep = [i for i, c in enumerate(d.header) if c != "entity_id"]
    d.write_csv([d.header[i] for i in keep], [[r[i] for i in keep] for r in d.rows])
    return _error(column="entity_id", text=("missing required column",))


def empty_file(d: Drop) -> Expect:
    d.write_bytes(b"")
    return _error(text=("empty",))


def blank_lines_only(d: Drop) -> Expect:
    d.write_bytes(b"\n\r\n   \n")
    return _error(text=("empty",))


def header_only(d: Drop) -> Expect:
    d.write_bytes(d.good.split(b"\n", 1)[0] + b"\n")
    return _error(text=("no data rows",))


def non_utf8_entity_id(d: Drop) -> Expect:
    data = d.csv_bytes(d.header, [r if i != 7 else ["CAFE_MARK", *r[1:]] for i, r in enumerate(d.rows)])
    path = d.write_bytes(data.replace(b"CAFE_MARK", "Café".encode("latin-1")))
    line = csv_line_where(path, lambda r: r["entity_id"] == "Café")
    assert first_non_utf8_line(path) == line
    return _error(rows=(line,), column="entity_id", text=("not UTF-8",))


def utf16_file(d: Drop) -> Expect:
    d.write_bytes(d.good.decode("utf-8").encode("utf-16"))
    return _error(text=("the file is UTF-16 text; save it as UTF-8",))


def binary_garbage_named_csv(d: Drop) -> Expect:
    path = d.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(7).bytes(4096))
    return _error(rows=(first_non_utf8_line(path),), text=("not UTF-8",))


def _line_with_surplus(path: Path) -> int:
    data = path.read_bytes().decode("utf-8")
    widths = [len(rec) for rec in csv.reader(io.StringIO(data))]
    (line,) = [i + 1 for i, w in enumerate(widths) if w > widths[0]]
    return line


def extra_field_row(d: Drop) -> Expect:
    rows = [list(r) for r in d.rows]
    rows[10].append("surplus")
    path = d.write_csv(rows=rows)
    return _error(rows=(_line_with_surplus(path),), text=("not a well-formed CSV", "9 field(s), but the header has 8"))


# ---- CSV: cell values the reader refuses ----


def text_in_number(d: Drop) -> Expect:
    path = d.edit(6, "nco_rate", "abc")
    return _error(rows=(csv_line_where(path, lambda r: r["nco_rate"] == "abc"),), column="nco_rate", text=("not a number",))


def thousands_separator_in_loans(d: Drop) -> Expect:
    path = d.edit(9, "loans", "1,234")
    assert b'"1,234"' in path.read_bytes()  # quoted, so the row still has 8 fields
    return _error(rows=(csv_line_where(path, lambda r: r["loans"] == "1,234"),), column="loans", text=("not a number",))


def quarter_holds_a_number(d: Drop) -> Expect:
    path = d.edit(12, "quarter", "5")
    return _error(rows=(csv_line_where(path, lambda r: r["quarter"] == "5"),), column="quarter", text=("not a quarter",))


def blank_entity_id(d: Drop) -> Expect:
    path = d.edit(14, "entity_id", "")
    return _error(rows=(csv_line_where(path, lambda r: r["entity_id"] == ""),), column="entity_id", text=("missing value",))


def whitespace_segment(d: Drop) -> Expect:
    path = d.edit(16, "segment", "   ")
    return _error(rows=(csv_line_where(path, lambda r: r["segment"] == "   "),), column="segment", text=("missing value",))


# ---- CSV: readable values that a blocking check refuses ----


def one_bad_cell(row_index: int, column: str, value: str, check: str) -> Callable[[Drop], Expect]:
    """A case that writes ``value`` into one cell; ``check`` must fail and cite that line and column."""

    def build(d: Drop) -> Expect:
        path = d.edit(row_index, column, value)
        return _check(check, rows=(csv_line_where(path, lambda r: r[column] == value),), column=column)

    return build


def net_charge_offs_identity_broken(d: Drop) -> Expect:
    r = d.rows[11]
    wrong = repr(float(r[d.col("charge_offs")]) - float(r[d.col("recoveries")]) + 1000.0)
    path = d.edit(11, "net_charge_offs", wrong)
    line = csv_line_where(path, lambda rec: rec["net_charge_offs"] == wrong)
    return _check("net_charge_off_identity", rows=(line,), column="net_charge_offs")


def duplicate_key_rows(d: Drop) -> Expect:
    rows = [list(r) for r in d.rows]
    rows.insert(11, list(rows[3]))
    path = d.write_csv(rows=rows)
    dup = rows[3]
    lines = csv_lines_where(path, lambda r: [r[c] for c in d.header] == dup)
    assert len(lines) == 2
    return _check("unique_keys", rows=tuple(lines), column="entity_id")


# ---- Parquet ----

_P = (PARQUET_NAME,)


def truncated_parquet(d: Drop) -> Expect:
    data = d.parquet_bytes()
    d.write_bytes(data[: len(data) // 2], PARQUET_NAME)
    d.csv_path.unlink()
    return _error(files=_P, text=("truncated or corrupt",))


def csv_text_named_parquet(d: Drop) -> Expect:
    d.write_bytes(d.good, PARQUET_NAME)
    d.csv_path.unlink()
    return _error(files=_P, text=("not a readable Parquet file",))


def parquet_header_only(d: Drop) -> Expect:
    d.write_parquet(d.frame.iloc[:0])
    return _error(files=_P, text=("no data rows",))


def parquet_text_in_number(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame["nco_rate"] = frame["nco_rate"].astype(str)
    frame.loc[20, "nco_rate"] = "abc"
    path = d.write_parquet(frame)
    (row,) = parquet_rows_where(path, lambda f: f["nco_rate"] == "abc")
    return _error(files=_P, rows=(row,), column="nco_rate", text=("not a number",))


def parquet_quarter_as_integer(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame["quarter"] = 5
    path = d.write_parquet(frame)
    assert pa.types.is_integer(pq.read_schema(path).field("quarter").type)
    return _error(files=_P, rows=(1,), column="quarter", text=("not a quarter",))


def parquet_null_entity_id(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame.loc[9, "entity_id"] = None
    path = d.write_parquet(frame)
    (row,) = parquet_rows_where(path, lambda f: f["entity_id"].isna())
    return _error(files=_P, rows=(row,), column="entity_id", text=("missing value",))


def parquet_nan_rate(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame.loc[30, "nco_rate"] = np.nan
    path = d.write_parquet(frame)
    (row,) = parquet_rows_where(path, lambda f: f["nco_rate"].isna())
    return _check("nco_rate_in_range", files=_P, rows=(row,), column="nco_rate")


def parquet_wrong_quarter_inside(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame.loc[0, "quarter"] = "2019Q2"
    path = d.write_parquet(frame)
    (row,) = parquet_rows_where(path, lambda f: f["quarter"] == "2019Q2")
    return _check("quarter_matches_partition", files=_P, rows=(row,), column="quarter")


def csv_and_parquet_both_present(d: Drop) -> Expect:
    d.write_parquet(keep_csv=True)
    return _error(files=(CSV_NAME, PARQUET_NAME), text=("two drop files",))


CASES = [
    Case("missing_nco_rate_column", missing_nco_rate_column),
    Case("missing_entity_id_column", missing_entity_id_column),
    Case("empty_file", empty_file),
    Case("blank_lines_only", blank_lines_only),
    Case("header_only", header_only),
    Case("non_utf8_entity_id", non_utf8_entity_id),
    Case("utf16_file", utf16_file),
    Case("binary_garbage_named_csv", binary_garbage_named_csv),
    Case("extra_field_row", extra_field_row),
    Case("text_in_number", text_in_number),
    Case("thousands_separator_in_loans", thousands_separator_in_loans),
    Case("quarter_holds_a_number", quarter_holds_a_number),
    Case("blank_entity_id", blank_entity_id),
    Case("whitespace_segment", whitespace_segment),
    Case("nan_rate", one_bad_cell(4, "nco_rate", "NaN", "nco_rate_in_range")),
    Case("blank_rate", one_bad_cell(15, "nco_rate", "", "nco_rate_in_range")),
    Case("inf_rate", one_bad_cell(20, "nco_rate", "inf", "nco_rate_in_range")),
    Case("minus_inf_rate_in_last_row", one_bad_cell(-1, "nco_rate", "-inf", "nco_rate_in_range")),
    Case("absurd_rate", one_bad_cell(2, "nco_rate", "1e9", "nco_rate_in_range")),
    Case("negative_loans", one_bad_cell(8, "loans", "-1500.5", "loans_positive")),
    Case("zero_loans", one_bad_cell(18, "loans", "0", "loans_positive")),
    Case("net_charge_offs_identity_broken", net_charge_offs_identity_broken),
    Case("duplicate_key_rows", duplicate_key_rows),
    Case("wrong_quarter_inside", one_bad_cell(5, "quarter", "2019Q2", "quarter_matches_partition")),
    Case("earlier_quarter_as_date_inside", one_bad_cell(25, "quarter", "2018-10-01", "quarter_matches_partition")),
    Case("truncated_parquet", truncated_parquet),
    Case("csv_text_named_parquet", csv_text_named_parquet),
    Case("parquet_header_only", parquet_header_only),
    Case("parquet_text_in_number", parquet_text_in_number),
    Case("parquet_quarter_as_integer", parquet_quarter_as_integer),
    Case("parquet_null_entity_id", parquet_null_entity_id),
    Case("parquet_nan_rate", parquet_nan_rate),
    Case("parquet_wrong_quarter_inside", parquet_wrong_quarter_inside),
    Case("csv_and_parquet_both_present", csv_and_parquet_both_present),
]


# ---- Cases that once slipped through or were cited at the wrong place ----


def parquet_timestamp_loans(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame["loans"] = pd.Timestamp("2019-03-31")
    d.write_parquet(frame)
    return _error(files=_P, rows=(1,), column="loans", text=("expected numbers",))


def parquet_boolean_rate(d: Drop) -> Expect:
    frame = d.frame.copy()
    frame["nco_rate"] = frame["nco_rate"] > 1.0
    d.write_parquet(frame)
    return _error(files=_P, rows=(1,), column="nco_rate", text=("expected numbers",))


def short_row(d: Drop) -> Expect:
    rows = [list(r) for r in d.rows]
    rows[10] = rows[10][: d.col("nco_rate") + 1]  # a ragged row: the amounts are simply not there
    path = d.write_csv(rows=rows)
    return _error(rows=(csv_line_where(path, lambda r: r["loans"] is None),), text=("field(s), but the header has 8",))


def truncated_csv(d: Drop) -> Expect:
    cut = d.good.rfind(b'"BANK_') + len(b'"BANK_')  # the copy stopped inside the last row's first field
    path = d.write_bytes(d.good[:cut])
    last_line = path.read_bytes().count(b"\n") + 1
    return _error(rows=(last_line,), text=("not a well-formed CSV", "unexpected end of data"))


def non_utf8_after_quoted_comma(d: Drop) -> Expect:
    rows = [list(r) for r in d.rows]
    rows[7][0] = "BANK, N.A."
    rows[7][1] = "SEG_MARK"
    path = d.write_bytes(d.csv_bytes(d.header, rows).replace(b"SEG_MARK", "Café".encode("latin-1")))
    line = csv_line_where(path, lambda r: r["segment"] == "Café")
    return _error(rows=(line,), column="segment", text=("not UTF-8",))


def whitespace_only_line_before_bad_value(d: Drop) -> Expect:
    data = d.csv_bytes(d.header, [r if i != 9 else [*r[:3], "abc", *r[4:]] for i, r in enumerate(d.rows)]).split(b"\n")
    data.insert(3, b"   ")  # line 4 holds only spaces
    path = d.write_bytes(b"\n".join(data))
    return _error(rows=(csv_line_where(path, lambda r: r["nco_rate"] == "abc"),), column="nco_rate", text=("not a number",))


def extra_field_in_first_data_row(d: Drop) -> Expect:
    rows = [list(r) for r in d.rows]
    rows[0].append("surplus")
    path = d.write_csv(rows=rows)
    line = _line_with_surplus(path)
    return _error(rows=(line,), not_rows=(line + 1,), text=("9 field(s), but the header has 8",))


CASES += [
    Case("inf_loans", one_bad_cell(3, "loans", "inf", "amounts_valid")),
    Case("inf_charge_offs", one_bad_cell(3, "charge_offs", "inf", "amounts_valid")),
    Case("parquet_timestamp_loans", parquet_timestamp_loans),
    Case("parquet_boolean_rate", parquet_boolean_rate),
    Case("short_row", short_row),
    Case("truncated_csv", truncated_csv),
    Case("non_utf8_after_quoted_comma", non_utf8_after_quoted_comma),
    Case("whitespace_only_line_before_bad_value", whitespace_only_line_before_bad_value),
    Case("extra_field_in_first_data_row", extra_field_in_first_data_row),
]


# --------------------------------------------------------------------------------------------
# Reading the run
# --------------------------------------------------------------------------------------------


def _failure_description(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            parts.append(data.user_failure_data.description)
        elif data.error:
            parts.append(data.error.message)
    return "\n".join(parts)


def _markdown_rows(markdown: str) -> list[dict[str, str]]:
    lines = [ln.strip() for ln in markdown.splitlines() if ln.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=False)) for ln in lines[2:]]


def _offending(evaluation) -> list[dict[str, str]]:
    return _markdown_rows(evaluation.metadata["first_offending_rows"].value)


def _cites(table: list[dict[str, str]], file: str, row: int | None, column: str | None) -> bool:
    for r in table:
        if r.get("file") != file:
            continue
        if row is not None and (not r.get("row") or r["row"] in ("nan", "None") or int(float(r["row"])) != row):
            continue
        if column is not None and r.get("column") != column:
            continue
        return True
    return False


def _message_cites(message: str, row: int, column: str | None, word: str = "row") -> bool:
    pattern = rf"\b{word} {row}\b" + (rf".*\b{re.escape(column)}\b" if column else "")
    return any(re.search(pattern, line) for line in message.splitlines())


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _assert_error(result, expect: Expect, layout: DataLayout) -> None:
    failures = result.get_step_failure_events()
    assert [e.step_key for e in failures] == ["nco_panel"]
    data = failures[0].step_failure_data
    assert data.user_failure_data is not None, f"not a deliberate dg.Failure but an unexpected exception:\n{data.error}"
    message = data.user_failure_data.description
    assert message and "Traceback" not in message
    for file in expect.files:
        assert file in message, message
    for fragment in expect.text:
        assert fragment in message, message
    for row in expect.rows:
        assert _message_cites(message, row, expect.column), f"row {row} / column {expect.column} not cited:\n{message}"
    if expect.column and not expect.rows:
        assert expect.column in message, message
    for row in expect.not_rows:
        assert not re.search(rf"\brow {row}\b", message), f"a good row ({row}) is blamed:\n{message}"
    assert _materialized(result) == set()
    assert not layout.rejected_panel_parquet(BAD_QUARTER).exists(), "a refused drop file must write nothing"


def _assert_check(result, expect: Expect, layout: DataLayout) -> None:
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {s.name for s in PANEL_CHECKS}
    failed_blocking = {e.check_name for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert failed_blocking == {expect.check}
    (evaluation,) = [e for e in evaluations if e.check_name == expect.check]
    table = _offending(evaluation)
    for file in expect.files:
        for row in expect.rows or (None,):
            offending = evaluation.metadata["first_offending_rows"].value
            assert _cites(table, file, row, expect.column), f"{file} row {row} column {expect.column} not cited:\n{offending}"
    failures = result.get_step_failure_events()
    assert [e.step_key for e in failures] == ["nco_panel"]
    assert expect.check in failures[0].step_failure_data.error.message  # DagsterAssetCheckFailedError names the check
    assert _materialized(result) == {"nco_panel"}
    (materialization,) = result.asset_materializations_for_node("nco_panel")
    assert str(materialization.metadata["status"].value).startswith("rejected")
    assert layout.rejected_panel_parquet(BAD_QUARTER).exists()


def _assert_untouched(layout: DataLayout, template: Template, rejected_allowed: bool) -> None:
    assert not layout.panel_parquet(BAD_QUARTER).exists(), "the bad quarter must not get an accepted file"
    assert not layout.prompts_parquet(BAD_QUARTER).exists(), "nco_prompts must not be built on a refused quarter"
    now = _hashes(layout.processed_dir)
    changed = {p for p, h in template.hashes.items() if now.get(p) != h}
    assert not changed, f"processed files changed or removed: {sorted(changed)}"
    new = set(now) - set(template.hashes)
    allowed = {layout.rejected_panel_parquet(BAD_QUARTER).relative_to(layout.processed_dir).as_posix()} if rejected_allowed else set()
    assert new <= allowed, f"unexpected new processed files: {sorted(new - allowed)}"


def _run_case(case: Case, workspace, template: Template) -> None:
    layout, instance = workspace
    expect = case.build(Drop(layout))
    result = run_assets(["nco_panel", "nco_prompts"], BAD_QUARTER, instance)
    assert not result.success
    assert "nco_prompts" not in _materialized(result), "a blocking failure must stop nco_prompts in the same run"
    if expect.kind == "error":
        _assert_error(result, expect, layout)
    else:
        _assert_check(result, expect, layout)
    _assert_untouched(layout, template, rejected_allowed=expect.kind != "error")


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_drop_file_is_refused_with_file_row_and_column(case, workspace, template):
    _run_case(case, workspace, template)


def test_corpus_is_at_least_15_distinct_malformed_files(template, tmp_path):
    """Every builder writes something different from the good file and from every other builder."""
    digests: dict[str, str] = {}
    for case in CASES:
        root = tmp_path / case.name
        shutil.copytree(_data(template.root) / "raw", root / "raw")
        layout = DataLayout(root)
        drop = Drop(layout)
        expect = case.build(drop)
        assert expect.kind in ("error", "check")
        assert expect.kind == "error" or expect.rows, f"{case.name}: a check case must name its offending row"
        written = sorted(p for p in layout.raw_nco_dir.glob(f"{BAD_QUARTER}.*"))
        digest = "+".join(f"{p.name}:{sha256_file(p)}" for p in written)
        assert digest != f"{CSV_NAME}:{sha256_file(_data(template.root) / 'raw' / 'nco' / CSV_NAME)}", case.name
        digests[case.name] = digest
    assert len(CASES) >= MIN_CORPUS
    assert len(set(digests.values())) == len(digests), "two cases build the same file"


def test_negative_gross_amounts_from_year_to_date_revisions_are_accepted_with_a_warning_naming_the_row(workspace, template):
    """FR Y-9C reports HI-B year to date, so a quarter's derived gross amounts can come out negative while its net
    charge-offs, and so the rate, are right: the quarter is accepted, and a warning names the file, row and column."""
    layout, instance = workspace
    drop = Drop(layout)
    rows = [list(r) for r in drop.rows]
    charge_offs, recoveries = (float(rows[5][drop.col(c)]) for c in ("charge_offs", "recoveries"))
    revision = charge_offs + 25.0  # a downward revision larger than the quarter's own gross charge-offs
    negative = repr(charge_offs - revision)
    rows[5][drop.col("charge_offs")], rows[5][drop.col("recoveries")] = negative, repr(recoveries - revision)  # the net is unchanged
    line = csv_line_where(drop.write_csv(rows=rows), lambda r: r["charge_offs"] == negative)
    result = run_assets(["nco_panel", "nco_prompts"], BAD_QUARTER, instance)
    assert result.success, _failure_description(result)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(evaluations[name].passed for name in BLOCKING)
    warning = evaluations["gross_amounts_negative"]
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert _cites(_offending(warning), CSV_NAME, line, "charge_offs")
    assert _materialized(result) == {"nco_panel", "nco_prompts"} and layout.panel_parquet(BAD_QUARTER).exists()


def test_good_file_is_accepted_and_prompts_are_built(workspace, template):
    """Positive control: the same run and assertions on the untouched 2019Q1 file all flip."""
    layout, instance = workspace
    result = run_assets(["nco_panel", "nco_prompts"], BAD_QUARTER, instance)
    assert result.success, _failure_description(result)
    assert result.get_step_failure_events() == []
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {s.name for s in PANEL_CHECKS}
    assert all(e.passed for e in evaluations if e.check_name in BLOCKING)
    assert _materialized(result) == {"nco_panel", "nco_prompts"}
    assert layout.panel_parquet(BAD_QUARTER).exists()
    assert layout.prompts_parquet(BAD_QUARTER).exists()
    assert not layout.rejected_panel_parquet(BAD_QUARTER).exists()
    accepted = pq.read_table(layout.panel_parquet(BAD_QUARTER)).to_pandas()
    assert set(accepted["quarter"]) == {BAD_QUARTER} and set(accepted["source_file"]) == {CSV_NAME}
    now = _hashes(layout.processed_dir)
    assert all(now[p] == h for p, h in template.hashes.items()), "earlier partitions changed"

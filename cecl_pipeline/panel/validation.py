"""Great Expectations 1.x suites for the NCO panel and the macro table.

Each named check is a group of GX expectations tagged with ``meta={"check": name}``. One suite run
validates a frame; failures are mapped back to the file, row, column and value they came from.
GX is imported inside the functions: it takes seconds to import and most callers never need it.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cecl_pipeline.panel.errors import MAX_LISTED
from cecl_pipeline.panel.schema import KEY_COLUMNS, MACRO_COLUMNS, MACRO_QUARTER, NUMERIC_COLUMNS, RATE_COLUMN
from cecl_pipeline.quarters import ordinals

FAILURE_COLUMNS = ["file", "row", "column", "value", "reason"]


@dataclass(frozen=True)
class PanelLimits:
    """Configurable bounds; defaults suit annualised NCO rates in percent."""

    nco_rate_min: float = -10.0
    nco_rate_max: float = 50.0
    nco_rate_warn_above: float = 20.0
    identity_atol: float = 0.5  # same units as the amounts (e.g. $ thousands)
    identity_rtol: float = 1e-6
    amount_abs_max: float = 1e15  # beyond any bank's book in any currency unit: a unit or parsing error


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    blocking: bool  # ERROR severity: downstream must not build on this data


@dataclass
class CheckOutcome:
    spec: CheckSpec
    passed: bool
    failing_rows: int = 0
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    note: str = ""

    def summary(self) -> str:
        if self.passed:
            return f"{self.spec.name}: passed{f' ({self.note})' if self.note else ''}"
        return f"{self.spec.name}: {self.failing_rows} offending row(s) — {self.spec.description}"


PANEL_CHECKS = (
    CheckSpec("schema", "required columns present with the panel's types", True),
    CheckSpec("quarter_matches_partition", "every row's quarter is the partition's quarter", True),
    CheckSpec("unique_keys", "one row per (entity_id, segment, quarter)", True),
    CheckSpec("nco_rate_in_range", "nco_rate is present, finite and within the configured range", True),
    CheckSpec("nco_rate_high", "nco_rate above the warning level (review, not blocking)", False),
    CheckSpec("loans_positive", "loans > 0 where given", True),
    CheckSpec("amounts_valid", "amounts finite and of sane magnitude, where given", True),
    # Quarterly amounts derived from year-to-date filings (FR Y-9C HI-B) carry revisions: a quarter's gross
    # amounts can come out negative while its net charge-offs, checked by the identity below, are right.
    CheckSpec("gross_amounts_negative", "gross charge-offs or recoveries below 0, as year-to-date revisions give (review, not blocking)", False),
    CheckSpec("net_charge_off_identity", "net_charge_offs = charge_offs − recoveries within tolerance, where given", True),
    CheckSpec("series_continuity", "every entity/segment present last quarter is present now (warning)", False),
)

GROSS_COLUMNS = ("charge_offs", "recoveries")

MACRO_CHECKS = (
    CheckSpec("macro_no_gaps", "one row per quarter, consecutive quarters, no blanks inside a series", True),
)


def validate_panel(
    panel: pd.DataFrame, quarter: str, previous: pd.DataFrame | None = None, limits: PanelLimits = PanelLimits()
) -> list[CheckOutcome]:
    """Run the panel suite on one quarter's frame; ``previous`` is last quarter's accepted panel, if any."""
    import great_expectations.expectations as gxe

    frame = panel.reset_index(drop=True).copy()
    gap = frame["net_charge_offs"] - (frame["charge_offs"] - frame["recoveries"])
    frame["__identity_excess__"] = gap.abs() - (limits.identity_atol + limits.identity_rtol * frame["charge_offs"].abs())
    key_type = [gxe.ExpectColumnValuesToBeOfType(column=c, type_="str", meta=_meta("schema", c, "not text")) for c in KEY_COLUMNS]
    num_type = [gxe.ExpectColumnValuesToBeOfType(column=c, type_="float64", meta=_meta("schema", c, "not float64")) for c in NUMERIC_COLUMNS]
    expectations = [
        *key_type,
        *num_type,
        gxe.ExpectColumnValuesToBeInSet(column="quarter", value_set=[quarter], meta=_meta("quarter_matches_partition", "quarter", f"quarter is not {quarter}")),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(KEY_COLUMNS), meta=_meta("unique_keys", "entity_id", "duplicate (entity_id, segment, quarter)")),
        gxe.ExpectColumnValuesToNotBeNull(column=RATE_COLUMN, meta=_meta("nco_rate_in_range", RATE_COLUMN, "missing or NaN")),
        gxe.ExpectColumnValuesToBeBetween(
            column=RATE_COLUMN, min_value=limits.nco_rate_min, max_value=limits.nco_rate_max,
            meta=_meta("nco_rate_in_range", RATE_COLUMN, f"outside [{limits.nco_rate_min}, {limits.nco_rate_max}] or infinite"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=RATE_COLUMN, max_value=limits.nco_rate_warn_above, meta=_meta("nco_rate_high", RATE_COLUMN, f"above {limits.nco_rate_warn_above}")
        ),
        gxe.ExpectColumnValuesToBeBetween(column="loans", min_value=0, strict_min=True, meta=_meta("loans_positive", "loans", "not > 0")),
        *_amount_expectations(limits),
        gxe.ExpectColumnValuesToBeBetween(
            column="__identity_excess__", max_value=0, meta=_meta("net_charge_off_identity", "net_charge_offs", "≠ charge_offs − recoveries")
        ),
    ]
    outcomes = _run_suite(frame, expectations, PANEL_CHECKS[:-1], report_columns={"__identity_excess__": "net_charge_offs"})
    outcomes.append(_continuity(panel, previous))
    return outcomes


def _amount_expectations(limits: PanelLimits) -> list:
    import great_expectations.expectations as gxe

    bound = limits.amount_abs_max
    sane = [
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=-bound, max_value=bound,
                                          meta=_meta("amounts_valid", column, f"not finite, or beyond ±{bound:g}"))
        for column in NUMERIC_COLUMNS[1:]
    ]
    gross = [
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, meta=_meta("gross_amounts_negative", column, "negative"))
        for column in GROSS_COLUMNS
    ]
    return sane + gross


def validate_macro(macro: pd.DataFrame) -> list[CheckOutcome]:
    """Consecutive unique quarters, and no blank inside any series once it has started."""
    import great_expectations.expectations as gxe

    frame = macro.reset_index(drop=True).copy()
    frame["__step__"] = ordinals(frame[MACRO_QUARTER]).astype("float64").diff()
    expectations = [
        gxe.ExpectColumnValuesToBeUnique(column=MACRO_QUARTER, meta=_meta("macro_no_gaps", MACRO_QUARTER, "duplicate quarter")),
        gxe.ExpectColumnValuesToBeInSet(column="__step__", value_set=[1.0],
                                        meta=_meta("macro_no_gaps", MACRO_QUARTER, "not the quarter after the previous row")),
    ]
    for column in MACRO_COLUMNS:
        started = frame[column].notna().cummax()
        frame[f"__blank__{column}"] = (started & frame[column].isna()).astype("float64")
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(column=f"__blank__{column}", value_set=[0.0], meta=_meta("macro_no_gaps", column, "blank inside the series"))
        )
    return _run_suite(frame, expectations, MACRO_CHECKS, report_columns={f"__blank__{c}": c for c in MACRO_COLUMNS} | {"__step__": MACRO_QUARTER})


def _meta(check: str, column: str, reason: str) -> dict:
    return {"check": check, "column": column, "reason": reason}


def _run_suite(frame: pd.DataFrame, expectations: list, specs: tuple[CheckSpec, ...], report_columns: dict[str, str]) -> list[CheckOutcome]:
    results = _gx_validate(frame, expectations)
    failures: dict[str, list[pd.DataFrame]] = {s.name: [] for s in specs}
    failed_rows: dict[str, set[int]] = {s.name: set() for s in specs}
    for result in results:
        meta = result.expectation_config.meta or {}
        if result.success:
            continue
        indices = result.result.get("unexpected_index_list")
        if indices is None:  # a whole-column result, e.g. a wrong dtype
            failures[meta["check"]].append(
                pd.DataFrame([{"file": _first(frame, "source_file"), "row": None, "column": meta["column"],
                               "value": result.result.get("observed_value"), "reason": meta["reason"]}])
            )
            failed_rows[meta["check"]].add(-1)
            continue
        idx = np.asarray(indices, dtype=np.int64)
        failed_rows[meta["check"]].update(idx.tolist())
        failures[meta["check"]].append(_failure_rows(frame, idx[:MAX_LISTED], meta, report_columns))
    return [_outcome(spec, failures[spec.name], failed_rows[spec.name]) for spec in specs]


def _outcome(spec: CheckSpec, parts: list[pd.DataFrame], rows: set[int]) -> CheckOutcome:
    if not parts:
        return CheckOutcome(spec, passed=True)
    table = pd.concat(parts, ignore_index=True).sort_values("row", kind="stable", na_position="first").head(MAX_LISTED)
    return CheckOutcome(spec, passed=False, failing_rows=len(rows), failures=table.reset_index(drop=True))


def _failure_rows(frame: pd.DataFrame, idx: np.ndarray, meta: dict, report_columns: dict[str, str]) -> pd.DataFrame:
    column = report_columns.get(meta["column"], meta["column"])
    rows = frame["source_row"].to_numpy()[idx] if "source_row" in frame else idx + 1
    files = frame["source_file"].to_numpy()[idx] if "source_file" in frame else np.full(len(idx), None)
    return pd.DataFrame(
        {"file": files, "row": rows, "column": column, "value": frame[column].to_numpy()[idx].astype(object), "reason": meta["reason"]}
    )


def _first(frame: pd.DataFrame, column: str):
    return frame[column].iloc[0] if column in frame and len(frame) else None


def _continuity(panel: pd.DataFrame, previous: pd.DataFrame | None) -> CheckOutcome:
    spec = PANEL_CHECKS[-1]
    if previous is None or previous.empty:
        return CheckOutcome(spec, passed=True, note="no previous quarter to compare with")
    import great_expectations.expectations as gxe

    pairs = ["entity_id", "segment"]
    now = pd.MultiIndex.from_frame(panel[pairs])
    before = previous.reset_index(drop=True).copy()
    before["__present_now__"] = pd.MultiIndex.from_frame(before[pairs]).isin(now).astype("float64")
    expectation = gxe.ExpectColumnValuesToBeInSet(
        column="__present_now__", value_set=[1.0], meta=_meta(spec.name, "entity_id", f"present in {before['quarter'].iloc[0]}, missing now")
    )
    (outcome,) = _run_suite(before, [expectation], (spec,), report_columns={})
    return outcome


def _gx_validate(frame: pd.DataFrame, expectations: list) -> list:
    """Validate ``frame`` against ``expectations`` as a throwaway suite on the shared ephemeral context."""
    import great_expectations as gx

    context, batch_definition = _gx_context()
    suite = context.suites.add(gx.ExpectationSuite(name=f"suite-{uuid.uuid4().hex}", expectations=expectations))
    try:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(suite, result_format={"result_format": "COMPLETE", "include_unexpected_rows": False}).results
    finally:
        context.suites.delete(suite.name)


@functools.cache
def _gx_context():
    """One in-memory GX context per process: building it costs more than validating a quarter."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _quiet_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = context.data_sources.add_pandas("frames").add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
    return context, batch_definition


def _quiet_gx() -> None:
    """GX draws tqdm bars and logs at INFO; neither belongs in a Dagster run log."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

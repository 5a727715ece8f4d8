"""From cecl_allowance's config and the files on disk to the booking: forward forecast, portfolio, overlays, last quarter's allowance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cecl_pipeline.defs.forward_run import panels_through
from cecl_pipeline.files import atomic_dir
from cecl_pipeline.forecast.allowance_report import AllowanceReport, write_report
from cecl_pipeline.forecast.booking import Booking, book
from cecl_pipeline.panel.overlays import OVERLAY_COLUMNS, read_overlay_file
from cecl_pipeline.panel.portfolio import read_portfolio_file
from cecl_pipeline.panel.scenario_weights import read_weights_file
from cecl_pipeline.panel.store import read_panels, write_frame
from cecl_pipeline.quarters import shift
from cecl_pipeline.settings import DEFAULT_LOOKBACK, DataLayout

SAVED = ("pools", "overlays", "paths")  # what next quarter's roll-forward and the audit read back


@dataclass
class BookedQuarter:
    booking: Booking
    report: AllowanceReport
    directory: Path
    previous: str | None  # the quarter the roll-forward starts from, None for the first booking


def book_quarter(quarter: str, reversion_quarters: int, layout: DataLayout, report_dir: Path) -> BookedQuarter:
    """Book the allowance at quarter-end ``quarter``; the files are written only when every input was accepted."""
    if reversion_quarters < 0:
        raise ValueError(f"reversion_quarters must be ≥ 0 (0 reverts immediately), got {reversion_quarters}")
    forecasts = _forward(layout, quarter)
    pools = read_portfolio_file(_portfolio_path(layout, quarter), forecasts["segment"].unique())
    overlays_path = layout.overlays_csv(quarter)
    overlays = read_overlay_file(overlays_path, pools["segment"].unique()) if overlays_path.exists() else _no_overlays()
    previous_quarter = shift(quarter, -1)
    previous = read_booking(layout.allowance_dir(previous_quarter))
    booking = book(quarter, pools, forecasts, overlays, reversion_quarters, previous, scenario_weights(layout, quarter, forecasts))
    directory = save_booking(booking, layout.allowance_dir(quarter))
    history = read_panels(panels_through(layout, quarter)[-DEFAULT_LOOKBACK:])
    report = write_report(booking, forecasts, history, reversion_quarters, report_dir, _notes(previous_quarter, previous is not None))
    return BookedQuarter(booking, report, directory, previous_quarter if previous is not None else None)


def scenario_weights(layout: DataLayout, quarter: str, forecasts: pd.DataFrame) -> dict[str, float] | None:
    """The weight of each scenario of the forecast from raw/scenario_weights/<Q>.csv; None for a lone (or unconditional) one,
    which ``book`` weighs 1."""
    scenarios = sorted(forecasts["scenario"].unique())
    if len(scenarios) == 1:
        return None
    path = layout.scenario_weights_csv(quarter)
    if not path.exists():
        raise FileNotFoundError(f"no scenario weights for {quarter} at {path}: the forecast has scenarios {', '.join(scenarios)}; "
                                "write one row per scenario with columns scenario, weight (summing to 1)")
    return read_weights_file(path, scenarios)


def _forward(layout: DataLayout, quarter: str) -> pd.DataFrame:
    path = layout.forward_parquet(quarter)
    if not path.exists():
        raise FileNotFoundError(f"no forward_forecasts from {quarter} at {path}: make it first (cecl forecast --origin {quarter})")
    return pd.read_parquet(path)


def _portfolio_path(layout: DataLayout, quarter: str) -> Path:
    path = layout.portfolio_csv(quarter)
    if not path.exists():
        raise FileNotFoundError(f"no portfolio for {quarter} at {path}: one row per pool with entity_id, segment, amortized_cost, "
                                "remaining_life_quarters and optionally prepayment_rate (annual, a fraction)")
    return path


def _no_overlays() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="float64" if column == "adjustment_bp" else "object") for column in OVERLAY_COLUMNS})


def save_booking(booking: Booking, directory: Path) -> Path:
    """pools, overlays and paths as Parquet, the directory replaced whole."""
    with atomic_dir(directory) as tmp:
        for name in SAVED:
            write_frame(getattr(booking, name), tmp / f"{name}.parquet")
    return directory


def read_booking(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A saved booking's pools and overlays, or None when that quarter was never booked."""
    if not all((directory / f"{name}.parquet").exists() for name in SAVED):
        return None
    return pd.read_parquet(directory / "pools.parquet"), pd.read_parquet(directory / "overlays.parquet")


def _notes(previous_quarter: str, has_previous: bool) -> list[str]:
    start = (f"The roll-forward starts from the allowance booked at {previous_quarter}." if has_previous else
             f"No allowance was booked at {previous_quarter}: the roll-forward starts from zero, so all of it shows as balance effect.")
    return [start,
            "Amounts are in the portfolio's currency units; loss rates are annualized NCO rates in % (a quarter loses rate/400 of its "
            "average balance).",
            "The forecast is the policy's median path, per scenario; an env that reads no macro data gives one unconditional forecast."]

"""12-quarter history windows ending at Q−1, paired with the target at Q, with a look-ahead guard.

``forward_windows`` is the same window for a quarter whose actuals are not in yet: the history ends
at the forecast origin and the target is unknown (NaN).

The guard is code, not convention: every value that may enter a prompt for quarter Q passes through
``assert_no_lookahead`` first, and anything dated Q or later raises ``LookaheadError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cecl_pipeline.panel.schema import RATE_COLUMN
from cecl_pipeline.quarters import from_ordinal, quarter_range, shift, to_ordinal

SERIES = ["entity_id", "segment"]


class LookaheadError(ValueError):
    """Data dated at or after the forecast quarter reached something that serves that quarter."""


def assert_no_lookahead(quarters: Iterable[str], target_quarter: str, source: str) -> None:
    """Raise if any quarter in ``quarters`` is at or after ``target_quarter``."""
    values = pd.Series(list(quarters) if not isinstance(quarters, pd.Series) else quarters, dtype="string").dropna().unique()
    if len(values) == 0:
        return
    latest = max(to_ordinal(q) for q in values)  # loop over distinct quarters only (a handful)
    if latest >= to_ordinal(target_quarter):
        raise LookaheadError(f"{source} holds data dated {from_ordinal(latest)}, which is not before the target quarter {target_quarter}")


@dataclass
class Windows:
    """One row per series with a target at Q: its 12-quarter history (oldest first) and the target."""

    target_quarter: str
    history_quarters: list[str]
    keys: pd.DataFrame  # entity_id, segment
    history: np.ndarray  # (n_series, lookback) float64, no NaN
    target: np.ndarray  # (n_series,)
    gaps: pd.DataFrame  # series with a target but an incomplete history: entity_id, segment, missing_quarters
    without_target: int  # series with a full history but no row at Q

    def __len__(self) -> int:
        return len(self.keys)


def history_quarters(target_quarter: str, lookback: int) -> list[str]:
    return quarter_range(shift(target_quarter, -lookback), shift(target_quarter, -1))


def build_windows(history: pd.DataFrame, targets: pd.DataFrame, target_quarter: str, lookback: int = 12) -> Windows:
    """Pair each series' rows from the ``lookback`` quarters before Q with its row at Q."""
    assert_no_lookahead(history["quarter"], target_quarter, "the history panel")
    wrong = targets.loc[targets["quarter"] != target_quarter, "quarter"]
    if len(wrong):
        raise ValueError(f"target rows must all be dated {target_quarter}; found {wrong.iloc[0]}")
    quarters = history_quarters(target_quarter, lookback)
    wide = _wide(history, quarters)
    target = targets.set_index(SERIES)[RATE_COLUMN].dropna().sort_index()
    aligned = wide.reindex(target.index)
    missing = aligned.isna().sum(axis=1)
    complete = (missing == 0).to_numpy()
    full_history = wide.index[wide.notna().all(axis=1)]
    gaps = missing[~complete].rename("missing_quarters").reset_index()
    return Windows(
        target_quarter=target_quarter,
        history_quarters=quarters,
        keys=target.index[complete].to_frame(index=False),
        history=aligned.to_numpy(dtype="float64")[complete],
        target=target.to_numpy(dtype="float64")[complete],
        gaps=gaps,
        without_target=int((~full_history.isin(target.index)).sum()),
    )


def forward_windows(history: pd.DataFrame, origin: str, lookback: int = 12) -> Windows:
    """Every series with a full history over the ``lookback`` quarters up to ``origin``, for target ``origin``+1 (no actuals: NaN)."""
    target_quarter = shift(origin, 1)
    assert_no_lookahead(history["quarter"], target_quarter, "the history panel")
    quarters = history_quarters(target_quarter, lookback)
    wide = _wide(history, quarters)
    missing = wide.isna().sum(axis=1)
    complete = (missing == 0).to_numpy()
    return Windows(
        target_quarter=target_quarter,
        history_quarters=quarters,
        keys=wide.index[complete].to_frame(index=False),
        history=wide.to_numpy(dtype="float64")[complete],
        target=np.full(int(complete.sum()), np.nan),
        gaps=missing[~complete].rename("missing_quarters").reset_index(),
        without_target=0,
    )


def _wide(history: pd.DataFrame, quarters: list[str]) -> pd.DataFrame:
    """One row per series (pivot sorts them by entity_id, segment), one column per quarter of ``quarters``; NaN where a row is missing."""
    in_window = history[history["quarter"].isin(quarters)]
    return in_window.pivot(index=SERIES, columns="quarter", values=RATE_COLUMN).reindex(columns=quarters)

"""The combining env's prompt body: the history, then the challengers' forecasts for the target quarter from the same window.

The model sees what automatic ETS, automatic ARIMA, Theta, their equal-weight combination and the
anchor (the mean of the last quarter and that combination) forecast from exactly the 12 quarters it
is shown, and answers with its own number: it can keep one of them, lean towards another, or
correct them all where the history says they miss.
Nothing dated at or after the target quarter enters: the forecasts are fitted on ``windows.history``
alone, which prompt building has already checked.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from cecl_pipeline.panel.prompts import DEFAULT_MACRO_COLUMNS, SharedColumns, history_lines
from cecl_pipeline.panel.text_format import join_lines, rates
from cecl_pipeline.panel.windows import Windows

SHOWN = {"auto_ets": "ETS", "auto_arima": "ARIMA", "theta": "Theta", "comb": "Combination (mean of the three)",
         "naive_comb": "Anchor (mean of the last quarter and the combination)"}


def history_and_challengers(windows: Windows, shared: SharedColumns, macro: pd.DataFrame | None = None,
                            macro_columns=DEFAULT_MACRO_COLUMNS) -> pa.Array:
    """The rate by quarter, then one line per challenger with its forecast for the target quarter."""
    from cecl_pipeline.challengers.registry import challenger_forecasts  # statsmodels and arch: seconds to import, so only here

    forecasts = challenger_forecasts(windows.history, SHOWN)
    lines = [history_lines(windows, shared), pa.scalar(f"Statistical forecasts for {windows.target_quarter} from these quarters:")]
    lines += [join_lines([pa.scalar(f"{label}: "), rates(forecasts[name].mean)], "") for name, label in SHOWN.items()]
    return join_lines(lines)

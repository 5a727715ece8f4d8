"""The synthetic default's macro scenarios: a baseline and a severely adverse path from the quarter after its last one.

Both start from the synthetic macro table's last quarter, as the Fed's start from the last published
one, and run 13 quarters, as the Fed's do. The baseline drifts each rate back towards its historical
mean (half-way in about three quarters) and grows each price index at its historical quarterly pace.
The severely adverse path adds a recession to it that peaks in the sixth quarter and fades after:
unemployment up 4.5 points, output falling, spreads and volatility up, house, commercial property
and stock prices down. No randomness: the same table always gives the same scenarios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cecl_pipeline.panel.scenarios import Scenario
from cecl_pipeline.panel.schema import MACRO_COLUMNS, MACRO_QUARTER
from cecl_pipeline.quarters import shift

SCENARIO_QUARTERS = 13
BASELINE, SEVERELY_ADVERSE = "Synthetic Baseline", "Synthetic Severely Adverse"
DEFAULT_WEIGHTS = {BASELINE: 0.8, SEVERELY_ADVERSE: 0.2}
PRICE_INDICES = ("dow_jones_index", "house_price_index", "cre_price_index")
PEAK_QUARTER = 6
# At the peak: points added to a rate, or the fall of a price index as a fraction of its baseline level.
STRESS = {
    "real_gdp_growth": -8.0, "nominal_gdp_growth": -7.0, "real_disposable_income_growth": -4.0, "nominal_disposable_income_growth": -4.0,
    "unemployment_rate": 4.5, "cpi_inflation": -1.5, "treasury_3m": -1.5, "treasury_5y": -1.2, "treasury_10y": -1.0, "bbb_yield": 3.0,
    "mortgage_rate": 0.5, "prime_rate": -1.5, "vix": 45.0, "dow_jones_index": -0.45, "house_price_index": -0.25, "cre_price_index": -0.35,
}


def synthesize_scenarios(macro: pd.DataFrame) -> list[Scenario]:
    """The baseline and the severely adverse scenario after ``macro``'s last quarter, in the stored form."""
    last = macro[MACRO_QUARTER].iloc[-1]
    k = np.arange(1, SCENARIO_QUARTERS + 1)
    baseline = {column: _baseline(macro[column].to_numpy(float), column, k) for column in MACRO_COLUMNS}
    shape = np.minimum(k / PEAK_QUARTER, 1.0) * np.exp(-np.maximum(k - PEAK_QUARTER, 0) / PEAK_QUARTER)
    adverse = {column: baseline[column] * (1 + STRESS[column] * shape) if column in PRICE_INDICES else baseline[column] + STRESS[column] * shape
               for column in MACRO_COLUMNS}
    quarters = [shift(last, int(step)) for step in k]
    return [Scenario(name, _table(quarters, path, name)) for name, path in ((BASELINE, baseline), (SEVERELY_ADVERSE, adverse))]


def _baseline(history: np.ndarray, column: str, k: np.ndarray) -> np.ndarray:
    if column in PRICE_INDICES:
        growth = np.exp(np.mean(np.diff(np.log(history))))
        return history[-1] * growth ** k
    return history.mean() + (history[-1] - history.mean()) * 0.8 ** k


def _table(quarters: list[str], path: dict[str, np.ndarray], name: str) -> pd.DataFrame:
    frame = pd.DataFrame({MACRO_QUARTER: quarters, **path})
    return frame.assign(source_file=f"synthetic: {name}", source_row=np.arange(2, len(frame) + 2))

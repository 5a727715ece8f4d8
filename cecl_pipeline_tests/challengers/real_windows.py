"""Real 12-quarter windows from both Fed charge-off files, and one BLAS thread for the statsmodels/pmdarima references."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cecl_pipeline_tests.conftest import SHARED_DATA

WINDOW = 12
FED_FILES = ("fed_chargeoff_rates_nsa.csv", "fred_chargeoff_rates.csv")


def quarter_number(quarters: pd.Series) -> np.ndarray:
    """'1991Q1' → 4 · 1991 + 0: consecutive quarters get consecutive integers."""
    return quarters.str[:4].astype(int).to_numpy() * 4 + quarters.str[-1].astype(int).to_numpy() - 1


@cache
def real_windows(first_target: str = "2000Q1", last_target: str = "2015Q4") -> tuple[np.ndarray, np.ndarray]:
    """Every 12-quarter history of both Fed files whose next quarter (the target) is in the range: (histories [N, 12], targets [N])."""
    first, last = (quarter_number(pd.Series([q]))[0] for q in (first_target, last_target))
    histories, targets = [], []
    for name in FED_FILES:
        frame = pd.read_csv(SHARED_DATA / name)
        for _, group in frame.groupby(["entity_id", "segment"]):
            rates = dict(zip(quarter_number(group["quarter"]), group["nco_rate"].to_numpy(float), strict=True))
            for target in range(first, last + 1):
                quarters = range(target - WINDOW, target + 1)
                if all(quarter in rates for quarter in quarters):
                    values = [rates[quarter] for quarter in quarters]
                    histories.append(values[:-1])
                    targets.append(values[-1])
    return np.array(histories), np.array(targets)


def single_blas_thread():
    """One BLAS thread: the references' thousands of tiny BLAS calls crawl (5–10×) when threads contend for a small machine's cores.

    threadpoolctl limits only the libraries already loaded, so import statsmodels or pmdarima first.
    """
    return threadpool_limits(limits=1, user_api="blas")

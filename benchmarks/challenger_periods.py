"""The challengers' walk-forward by period, on the Fed files and the synthetic panel: MAE, and calibrated coverage by window length.

Two choices rest on these figures: the anchor of the default env (``naive_comb``, the mean of
persistence and ``comb``) and the length of the conformal calibration window (4 quarters). Both
were chosen to hold in every period, not in the benchmark's 2010–2015 alone, so this prints each
period apart: the Fed files 2004–2009 (into the crisis), 2010–2015 (after it), 2016–2019 (calm), and
the synthetic default panel 2016–2019 and 2020–2023.

    .venv/bin/python benchmarks/challenger_periods.py [--windows 2 4 8 12 0]

A window of 0 calibrates on every earlier quarter.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.bootstrap.default_data import DEFAULT_BANKS, DEFAULT_SEED
from cecl_pipeline.bootstrap.synthetic import synthesize_macro, synthesize_panel
from cecl_pipeline.forecast.baselines import baseline_forecasts
from cecl_pipeline.forecast.conformal import calibrate, covered
from cecl_pipeline.panel.windows import build_windows
from cecl_pipeline.quarters import quarter_range

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FED_FILES = ("fed_chargeoff_rates_nsa.csv", "fred_chargeoff_rates.csv")
MODELS = ("persistence", "mean_4q", "auto_ets", "auto_arima", "theta", "comb", "naive_comb")  # the fast ones; ar1* and arima_110 fit per series
PANELS = {  # name: (first target fitted, periods scored); the first years only feed the calibration
    "fed": ("2002Q1", (("2004Q1", "2009Q4"), ("2010Q1", "2015Q4"), ("2016Q1", "2019Q4"))),
    "synthetic": ("2014Q1", (("2016Q1", "2019Q4"), ("2020Q1", "2023Q4"))),
}


def panel(name: str) -> pd.DataFrame:
    if name == "fed":
        return pd.concat([pd.read_csv(SHARED_DATA / file) for file in FED_FILES], ignore_index=True)
    return synthesize_panel(DEFAULT_BANKS, seed=DEFAULT_SEED, macro=synthesize_macro(seed=DEFAULT_SEED))


def walkforward(frame: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    """Every model's forecast rows for each target quarter first … last, each from the 12 quarters before it."""
    rows = []
    for quarter in quarter_range(first, last):
        windows = build_windows(frame[frame["quarter"] < quarter], frame[frame["quarter"] == quarter], quarter)
        examples = windows.keys.reset_index(drop=True).assign(
            prompt_id=[f"{quarter}-{i}" for i in range(len(windows))], history_quarters=[list(windows.history_quarters)] * len(windows),
            history=list(windows.history), target=windows.target)
        rows.append(baseline_forecasts(examples, quarter, MODELS))
    return pd.concat(rows, ignore_index=True)


def in_period(forecasts: pd.DataFrame, period: tuple[str, str]) -> np.ndarray:
    return forecasts["quarter"].between(*period).to_numpy()


def mae_table(forecasts: pd.DataFrame, periods) -> pd.DataFrame:
    error = (forecasts["point"] - forecasts["actual"]).abs()
    return pd.DataFrame({f"{a}–{b}": error[in_period(forecasts, (a, b))].groupby(forecasts["model"]).mean() for a, b in periods})


def coverage_table(forecasts: pd.DataFrame, periods, windows: list[int]) -> pd.DataFrame:
    """Mean calibrated 10–90 coverage over the banded models, per window length and period."""
    table = {}
    for window in windows:
        out = calibrate(forecasts, window=window if window > 0 else 10_000)
        hit = covered(out["actual"], out["q10_cal"], out["q90_cal"])
        table[window or "all"] = {f"{a}–{b}": hit[out["calibrated"].to_numpy() & in_period(out, (a, b))].mean() for a, b in periods}
    return pd.DataFrame(table).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[2, 4, 8, 12, 0], help="calibration windows, in quarters (0: all)")
    args = parser.parse_args()
    for name, (first, periods) in PANELS.items():
        started = time.perf_counter()
        forecasts = walkforward(panel(name), first, periods[-1][1])
        print(f"\n## {name}: {forecasts['prompt_id'].nunique():,} windows, fitted in {time.perf_counter() - started:.0f} s\n")
        maes = mae_table(forecasts, periods)
        print("MAE (pp), and each model's MAE over the period's best, in parentheses:\n")
        ratios = maes / maes.min()
        print(maes.round(4).astype(str).add(" (").add(ratios.round(2).astype(str)).add(")").to_markdown())
        print("\nCalibrated 10–90 coverage, mean over the banded models (goal 0.80), by window in quarters:\n")
        print(coverage_table(forecasts, periods, args.windows).round(3).to_markdown())


if __name__ == "__main__":
    main()

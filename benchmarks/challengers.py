"""The vectorised challengers against their library references on real windows: accuracy and time, side by side.

Every 12-quarter window of both Fed charge-off files whose target lies in 2000Q1–2015Q4 (768
windows, built with the pipeline's own ``build_windows``). Ours run on all of them; statsmodels'
ETSModel (ANN/AAN/AAdN by AICc) and ThetaModel and pmdarima's auto_arima run one series at a time, on
one BLAS thread, on a deterministic subsample. Printed per method: MAE against the realised value on
the subsample for both, ours on all windows, seconds per window for both, and the speed ratio.

    .venv/bin/python benchmarks/challengers.py [--reference-windows 120]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pmdarima
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.theta import ThetaModel
from threadpoolctl import threadpool_limits

from cecl_pipeline.challengers.arima import auto_arima
from cecl_pipeline.challengers.ets import auto_ets
from cecl_pipeline.challengers.theta import theta
from cecl_pipeline.panel.windows import build_windows
from cecl_pipeline.quarters import quarter_range

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = ("fed_chargeoff_rates_nsa.csv", "fred_chargeoff_rates.csv")


def real_windows(first: str = "2000Q1", last: str = "2015Q4") -> tuple[np.ndarray, np.ndarray]:
    """(histories [N, 12], targets [N]) over every series of both files and every target quarter in range."""
    panel = pd.concat([pd.read_csv(SHARED_DATA / name) for name in FILES], ignore_index=True)
    histories, targets = [], []
    for quarter in quarter_range(first, last):
        windows = build_windows(panel[panel["quarter"] < quarter], panel[panel["quarter"] == quarter], quarter)
        histories.append(windows.history)
        targets.append(windows.target)
    return np.vstack(histories), np.concatenate(targets)


def statsmodels_ets(y: np.ndarray) -> float:
    fits = [ETSModel(y, error="add", trend=trend, damped_trend=damped).fit(disp=False)
            for trend, damped in ((None, False), ("add", False), ("add", True))]
    return float(np.asarray(min(fits, key=lambda r: r.aicc).forecast(1))[0])


def statsmodels_theta(y: np.ndarray) -> float:
    return float(np.asarray(ThetaModel(y, period=1, deseasonalize=False).fit().forecast(1))[0])


def pmdarima_arima(y: np.ndarray) -> float:
    model = pmdarima.auto_arima(y, seasonal=False, information_criterion="aicc", max_p=2, max_q=1, start_q=1, max_d=1,
                                suppress_warnings=True, error_action="ignore")
    return float(model.predict(1)[0])


METHODS = {"auto_ets": (auto_ets, statsmodels_ets, "statsmodels ETSModel"), "theta": (theta, statsmodels_theta, "statsmodels ThetaModel"),
           "auto_arima": (auto_arima, pmdarima_arima, "pmdarima auto_arima")}


def reference_forecasts(fit, histories: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        forecasts = np.array([fit(y) for y in histories])
    return forecasts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-windows", type=int, default=120, help="windows the library references are fitted on")
    args = parser.parse_args()
    histories, targets = real_windows()
    rows = np.sort(np.random.default_rng(0).choice(len(histories), size=min(args.reference_windows, len(histories)), replace=False))
    print(f"{len(histories)} real windows; references on {len(rows)} of them, one BLAS thread")
    print(f"persistence MAE, all windows: {np.abs(histories[:, -1] - targets).mean():.4f}")
    print("| method | reference | MAE ours (subsample) | MAE reference (subsample) | MAE ours (all) | ms/window ours | ms/window reference | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, (ours, reference, label) in METHODS.items():
        started = time.perf_counter()
        mean, _ = ours(histories)
        ours_seconds = time.perf_counter() - started
        theirs, theirs_seconds = reference_forecasts(reference, histories[rows])
        ours_ms, theirs_ms = 1e3 * ours_seconds / len(histories), 1e3 * theirs_seconds / len(rows)
        print(f"| {name} | {label} | {np.abs(mean[rows] - targets[rows]).mean():.4f} | {np.abs(theirs - targets[rows]).mean():.4f} | "
              f"{np.abs(mean - targets).mean():.4f} | {ours_ms:.3f} | {theirs_ms:.1f} | {theirs_ms / ours_ms:,.0f}× |")


if __name__ == "__main__":
    main()

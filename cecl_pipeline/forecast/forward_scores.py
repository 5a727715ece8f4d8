"""Forward forecasts scored once their quarters' actuals are in: read as they were made, never re-made.

A row of ``forward_forecasts[Q]`` (origin Q, quarter Q+h) is scored when quarter Q+h has an accepted
panel: the actual is that panel's rate for the series, and the metrics are the walk-forward's
(``forecast.metrics``), per scenario, model and horizon. ``last`` stays the value at the origin, so
directional accuracy at Q+h asks whether the forecast called the move from Q. CRPS: the policy's
from its sampled paths, a challenger's Gaussian where it gave a band (Q+1), else |error|.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.forecast.metrics import crps_from_samples, crps_gaussian, metrics_table
from cecl_pipeline.forecast.walkforward import POLICY_MODEL
from cecl_pipeline.panel.schema import RATE_COLUMN
from cecl_pipeline.panel.store import read_panels
from cecl_pipeline.panel.windows import SERIES
from cecl_pipeline.settings import DataLayout

KEYS = ["origin", "scenario", "quarter", *SERIES]


def read_forward(files: list[Path]) -> pd.DataFrame:
    """Every forward forecast made so far, as written."""
    if not files:
        raise FileNotFoundError("no forward forecasts yet: materialize forward_forecasts for an origin quarter first (cecl forecast --origin Q)")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def accepted_actuals(layout: DataLayout, quarters) -> pd.DataFrame:
    """``entity_id, segment, quarter, actual`` from the accepted panels of those of ``quarters`` that have one."""
    present = [layout.panel_parquet(q) for q in sorted(set(quarters)) if layout.panel_parquet(q).exists()]
    if not present:
        return pd.DataFrame({"entity_id": [], "segment": [], "quarter": [], "actual": []})
    panel = read_panels(present)
    return panel[[*SERIES, "quarter", RATE_COLUMN]].rename(columns={RATE_COLUMN: "actual"})


def score_forward(forecasts: pd.DataFrame, actuals: pd.DataFrame, paths: pd.DataFrame) -> pd.DataFrame:
    """The forecast rows whose quarter has an actual, with ``actual`` and ``crps``; the forecast columns untouched."""
    scored = forecasts.merge(actuals, on=["quarter", *SERIES], how="inner", validate="many_to_one")
    actual, point, std = (scored[c].to_numpy(float) for c in ("actual", "point", "std"))
    crps = np.where(np.isfinite(std), crps_gaussian(point, np.nan_to_num(std), actual), np.abs(point - actual))
    policy = (scored["model"] == POLICY_MODEL).to_numpy()
    if policy.any():
        crps[policy] = crps_from_samples(path_samples(paths, scored[policy]), actual[policy])
    return scored.assign(crps=crps)


def path_samples(paths: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Every path's value for each of ``rows`` (origin, quarter, series) as an [n, S] array, NaN-padded."""
    grouped = paths.groupby(KEYS)["value"].apply(lambda v: v.to_numpy(float))
    values = [grouped.get(tuple(key), np.array([np.nan])) for key in rows[KEYS].itertuples(index=False)]
    width = max((len(v) for v in values), default=1)
    return np.array([np.pad(v, (0, width - len(v)), constant_values=np.nan) for v in values]).reshape(len(values), width)


def forward_metrics(scored: pd.DataFrame) -> pd.DataFrame:
    """The walk-forward's metrics per scenario, model and horizon over every scored forward row."""
    return metrics_table(scored, by=["scenario", "horizon"])

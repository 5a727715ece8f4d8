"""From the forward assets' config and the files on disk to the library calls that forecast from an origin and score what landed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.defs.walkforward_run import serving_policy
from cecl_pipeline.envs.prompt_dataset import load_macro
from cecl_pipeline.envs.registry import Env, get_env
from cecl_pipeline.files import write_bytes_atomic
from cecl_pipeline.forecast.forward import ForwardForecast, forecast_forward
from cecl_pipeline.forecast.forward_scores import accepted_actuals, forward_metrics, read_forward, score_forward
from cecl_pipeline.forecast.reversion import long_run_mean
from cecl_pipeline.forecast.walkforward import POLICY_MODEL
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.panel.scenarios import read_stored_scenarios, scenarios_from
from cecl_pipeline.panel.schema import MACRO_QUARTER, RATE_COLUMN
from cecl_pipeline.panel.store import read_panels, write_frame
from cecl_pipeline.panel.windows import SERIES, forward_windows
from cecl_pipeline.quarters import shift, to_ordinal
from cecl_pipeline.settings import DEFAULT_LOOKBACK, DataLayout


def forecast_from_origin(origin: str, config, layout: DataLayout, store: PolicyStore, log: Callable[[str], None]) -> ForwardForecast:
    """Forecast origin+1 … origin+H with grpo_policy[origin+1], the policy trained on every target up to the origin."""
    policy = serving_policy(shift(origin, 1), config, store, f" (the policy trained on every target up to {origin})")
    if not layout.panel_parquet(origin).exists():
        raise FileNotFoundError(f"no accepted nco_panel for {origin} at {layout.panel_parquet(origin)}: "
                                f"materialize nco_panel for {origin} and fix any failed checks")
    history = read_panels(panels_through(layout, origin))
    windows = forward_windows(history, origin, DEFAULT_LOOKBACK)
    if not len(windows):
        raise ValueError(f"no series has an accepted rate for every quarter {windows.history_quarters[0]}–{origin}: nothing to forecast from")
    if len(windows.gaps):
        log(f"{len(windows.gaps)} series have gaps in {windows.history_quarters[0]}–{origin} and get no forward forecast")
    env = get_env(policy.env)
    macro = macro_through(layout, env, origin)
    scenarios = scenarios_from(read_stored_scenarios(layout.scenarios_dir), list(config.scenarios), origin) if env.needs_macro else {}
    if config.scenarios and not env.needs_macro:
        log(f"env {env.name} reads no macro data: one unconditional forecast serves every scenario ({', '.join(config.scenarios)})")
    return forecast_forward(windows, series_long_run_mean(history, windows.keys), policy.checkpoints, env, policy.settings, config.horizon,
                            layout.forward_parquet(origin), layout.forward_paths_parquet(origin), tuple(config.baselines), macro, log,
                            scenarios)


def panels_through(layout: DataLayout, origin: str) -> list[Path]:
    """Every accepted panel file dated at or before ``origin``."""
    files = sorted(layout.panel_parquet(origin).parent.glob("*.parquet"))
    return [f for f in files if to_ordinal(f.stem) <= to_ordinal(origin)]


def series_long_run_mean(history: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """Each series' mean rate over every accepted quarter in ``history`` (which ends at the origin), in the order of ``keys``."""
    wide = history.pivot(index=SERIES, columns="quarter", values=RATE_COLUMN).reindex(pd.MultiIndex.from_frame(keys))
    return long_run_mean(wide.to_numpy(float))


def macro_through(layout: DataLayout, env: Env, origin: str) -> pd.DataFrame | None:
    """The macro rows dated at or before ``origin`` when ``env`` reads them, else None."""
    macro = load_macro(layout, [env])
    return None if macro is None else macro[macro[MACRO_QUARTER].map(to_ordinal) <= to_ordinal(origin)]


@dataclass
class ForwardScores:
    scored: pd.DataFrame
    metrics: pd.DataFrame
    origins: list[str]
    metrics_path: Path
    scored_path: Path


def score_all_origins(layout: DataLayout, directory: Path) -> ForwardScores:
    """Every forward forecast's rows whose quarter has landed, scored; metrics per model and horizon written as CSV."""
    files = layout.forward_files()
    forecasts = read_forward(files)
    paths = pd.concat([pd.read_parquet(layout.forward_paths_parquet(f.parent.name), columns=["origin", "scenario", "quarter", *SERIES, "value"])
                       for f in files], ignore_index=True)
    scored = score_forward(forecasts, accepted_actuals(layout, forecasts["quarter"].unique()), paths)
    metrics = forward_metrics(scored)
    metrics_path = directory / "scores.csv"
    write_bytes_atomic(metrics_path, metrics.to_csv(index=False).encode())
    scored_path = write_frame(scored, directory / "scored.parquet")
    return ForwardScores(scored, metrics, sorted(forecasts["origin"].unique(), key=to_ordinal), metrics_path, scored_path)


def policy_path_table(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The policy's forecast path per scenario and segment: the mean over the segment's series of its point and 10/90 quantiles, per quarter."""
    policy = forecasts[forecasts["model"] == POLICY_MODEL]
    return policy.groupby(["scenario", "segment", "quarter"], sort=True)[["point", "q10", "q90"]].mean().reset_index()

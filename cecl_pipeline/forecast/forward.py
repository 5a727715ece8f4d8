"""Forward forecasts from origin Q: quarters Q+1 … Q+H, whose actuals are not in yet, as sampled paths.

The policy forecasts a path one quarter at a time: its sampled value for Q+1 becomes the last
history quarter of the prompt for Q+2, and so on (the recursive strategy), so each of the G paths
per series and member carries its own uncertainty forward. Paths of a series that reached the same
history read the same prompt; each distinct prompt is sampled G times (sharing its prefill) and
each of its paths takes one of those samples, a draw as independent as its own prompt would give. The 10/50/90 quantiles of a quarter come
from every parsed value of every path; the point is the median of the members' medians, as in the
walk-forward. A sample that does not parse continues its path at the last value and counts against
that quarter's ``parse_rate``.

The challengers forecast the same quarters with the same recursion, feeding back their own point
forecast. Their band is the one-step Gaussian band at Q+1 only: the fits do not carry their
multi-step variance through the recursion, and a band built as if they did would be too narrow.

Scenarios: an env that reads macro data shows, for each forecast quarter, the macro line of that
quarter (``panel.prompts.target_macro_line``), which in training held the realised values. Forward,
the quarters after Q take their macro rows from a scenario's path, so the policy is sampled once per
scenario (with the same seeds: the scenarios differ by their conditions, not by their noise) and every
row carries its ``scenario``. An env that reads no macro data gives one forecast, ``unconditional``.

Nothing dated after Q enters but the scenario's path: the windows come from panels up to Q
(``forward_windows`` asserts it), realised macro rows after Q are refused, and a policy trained on
targets at Q+1 or later is refused.
Two Parquet files are written, each atomically: ``paths.parquet`` (the audit trail), then
``forecasts.parquet``, the long table ``forward_scores`` scores once actuals land.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.challengers.registry import challenger_forecasts, check_names
from cecl_pipeline.challengers.scale import naive_scale
from cecl_pipeline.envs.registry import Env
from cecl_pipeline.forecast.baselines import Z90
from cecl_pipeline.forecast.policy_samples import LoadedPolicy, SampleSettings, checkpoint_hash, sample_policy
from cecl_pipeline.forecast.reversion import MAX_HORIZON
from cecl_pipeline.forecast.walkforward import POLICY_MODEL, Checkpoint
from cecl_pipeline.grpo.provenance import assert_not_trained_on
from cecl_pipeline.panel.prompts import build_prompts
from cecl_pipeline.panel.schema import MACRO_QUARTER
from cecl_pipeline.panel.store import write_frame
from cecl_pipeline.panel.windows import SERIES, Windows, assert_no_lookahead, history_quarters
from cecl_pipeline.quarters import shift, to_ordinal

UNCONDITIONAL = "unconditional"  # the scenario of a forecast whose env reads no macro data
PATH_COLUMNS = ["origin", "scenario", "quarter", "horizon", "entity_id", "segment", "model_id", "checkpoint_hash", "member", "path", "prompt_id",
                "model_input", "completion", "value", "continued_at"]


@dataclass
class ForwardForecast:
    origin: str
    forecasts: pd.DataFrame
    forecasts_path: Path
    paths_path: Path
    completions: int
    parse_rate: float
    seconds: float


def check_horizon(horizon: int) -> int:
    if not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be 1–{MAX_HORIZON} quarters, got {horizon}")
    return horizon


def forecast_forward(windows: Windows, long_run_mean: np.ndarray, checkpoints: list[Checkpoint], env: Env, settings: SampleSettings,
                     horizon: int, forecasts_path: Path, paths_path: Path, baselines: tuple[str, ...] = CHALLENGERS,
                     macro: pd.DataFrame | None = None, log: Callable[[str], None] = print,
                     scenarios: dict[str, pd.DataFrame] | None = None) -> ForwardForecast:
    """Paths Q+1 … Q+H for every series of ``windows`` (history up to the origin Q) from every checkpoint, beside the challengers;
    once per scenario (name → its macro path from Q+1) when ``env`` reads macro data."""
    origin = shift(windows.target_quarter, -1)
    check_horizon(horizon)
    if not checkpoints:
        raise ValueError(f"no policy checkpoints to forecast from {origin} with")
    if macro is not None:
        assert_no_lookahead(macro[MACRO_QUARTER], windows.target_quarter, "the macro covariates")
    conditions = scenario_conditions(env, origin, horizon, macro, scenarios or {})
    for checkpoint in checkpoints:
        assert_not_trained_on(checkpoint.path, [windows.target_quarter])
    started = time.perf_counter()
    log(f"forward from {origin}: {len(windows)} series × {settings.samples} paths × {len(checkpoints)} member(s), "
        f"{windows.target_quarter}–{shift(origin, horizon)}, scenario(s) {', '.join(conditions)}")
    paths = pd.concat([member_paths(c, k, windows, env, settings, horizon, table, log).assign(scenario=name)
                       for name, table in conditions.items() for k, c in enumerate(checkpoints)], ignore_index=True)
    challengers = challenger_rows(windows, check_names(baselines), origin, horizon)
    forecasts = pd.concat([frame.assign(scenario=name) for name in conditions
                           for frame in (policy_rows(windows, paths[paths["scenario"] == name], origin, horizon), challengers)],
                          ignore_index=True)
    means = windows.keys.assign(long_run_mean=np.asarray(long_run_mean, float))
    forecasts = forecasts.merge(means, on=SERIES, how="left", validate="many_to_one")
    write_frame(paths[PATH_COLUMNS], paths_path)
    write_frame(forecasts, forecasts_path)
    return ForwardForecast(origin, forecasts, forecasts_path, paths_path, len(paths), float(paths["value"].notna().mean()),
                           time.perf_counter() - started)


def scenario_conditions(env: Env, origin: str, horizon: int, macro: pd.DataFrame | None,
                        scenarios: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame | None]:
    """Scenario name → the macro table its prompts read: realised up to the origin, then the scenario's path for the horizon."""
    if not env.needs_macro:
        return {UNCONDITIONAL: macro}
    if not scenarios:
        raise ValueError(f"env {env.name} reads macro data: a forecast from {origin} needs a scenario whose path starts {shift(origin, 1)} "
                         "(cecl import-scenario FILE, then name it in the forward_forecasts config)")
    wanted = [shift(origin, h) for h in range(1, horizon + 1)]
    tables = {}
    for name, path in scenarios.items():
        covered = path[MACRO_QUARTER].tolist()[:horizon]
        if covered != wanted:
            raise ValueError(f"scenario {name!r} covers {covered[0] if covered else 'nothing'}–{covered[-1] if covered else ''}: a forecast "
                             f"from {origin} over {horizon} quarters needs {wanted[0]}–{wanted[-1]}, one row each")
        realised = macro if macro is not None else path.iloc[:0]
        tables[name] = pd.concat([realised, path.iloc[:horizon][realised.columns.intersection(path.columns)]], ignore_index=True)
    return tables


def member_paths(checkpoint: Checkpoint, member: int, windows: Windows, env: Env, settings: SampleSettings, horizon: int,
                 macro: pd.DataFrame | None, log: Callable[[str], None]) -> pd.DataFrame:
    """G paths per series from one member: one row per (series, path, quarter), the prompt and completion of each step kept."""
    policy = LoadedPolicy(checkpoint.path)
    origin, g, n = shift(windows.target_quarter, -1), settings.samples, len(windows)
    series = np.repeat(np.arange(n), g)
    keys = windows.keys.loc[series].reset_index(drop=True)
    path = np.tile(np.arange(g), n)
    histories = np.repeat(windows.history, g, axis=0)
    steps = []
    for h in range(1, horizon + 1):
        quarter = shift(origin, h)
        distinct, inverse = np.unique(np.column_stack([series, histories]), axis=0, return_inverse=True)
        prompts = step_prompts(windows.keys.loc[distinct[:, 0].astype(int)].reset_index(drop=True), distinct[:, 1:], quarter, env, macro)
        prompts["prompt_id"] = prompts["prompt_id"] + f":step-{h}-" + np.arange(len(prompts)).astype(str)
        sampled = sample_policy(policy, prompts, env.name, settings, (to_ordinal(origin), member, h), f"member {member}, {quarter}", log)
        taken = sampled.iloc[inverse.reshape(-1) * g + occurrence(inverse.reshape(-1))]
        value = taken["parsed"].to_numpy(float)
        continued = np.where(np.isnan(value), histories[:, -1], value)
        steps.append(keys.assign(origin=origin, quarter=quarter, horizon=h, model_id=checkpoint.model_id, member=member, path=path,
                                 prompt_id=taken["prompt_id"].to_numpy(), model_input=taken["model_input"].to_numpy(),
                                 completion=taken["completion"].to_numpy(), value=value, continued_at=continued))
        histories = np.concatenate([histories[:, 1:], continued[:, None]], axis=1)
    return pd.concat(steps, ignore_index=True).assign(checkpoint_hash=checkpoint_hash(checkpoint.path))


def occurrence(groups: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements share its group: [3, 1, 3, 3] → [0, 0, 1, 2]."""
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups)
    ranks = np.empty(len(groups), int)
    ranks[order] = np.arange(len(groups)) - np.repeat(np.cumsum(counts) - counts, counts)
    return ranks


def step_prompts(keys: pd.DataFrame, histories: np.ndarray, quarter: str, env: Env, macro: pd.DataFrame | None) -> pd.DataFrame:
    """The env's prompt for ``quarter`` over each history row (its last quarters may be earlier steps' sampled values)."""
    window = Windows(quarter, history_quarters(quarter, histories.shape[1]), keys, histories, np.full(len(keys), np.nan),
                     gaps=pd.DataFrame(columns=["entity_id", "segment", "missing_quarters"]), without_target=0)
    return build_prompts(window, [env], macro).to_pandas()


def policy_rows(windows: Windows, paths: pd.DataFrame, origin: str, horizon: int) -> pd.DataFrame:
    """The policy's rows: per series and quarter, quantiles over every parsed path value and the median of member medians."""
    index, frames = pd.MultiIndex.from_frame(windows.keys), []
    for h in range(1, horizon + 1):
        step = paths[paths["horizon"] == h]
        series = step.groupby(SERIES)["value"]
        point = step.groupby([*SERIES, "member"])["value"].median().groupby(SERIES).median()
        quantiles = [series.quantile(q).reindex(index).to_numpy(float) for q in (0.1, 0.5, 0.9)]
        parsed = (series.count() / series.size()).reindex(index).to_numpy(float)
        frames.append(forward_rows(windows, origin, h, POLICY_MODEL, point.reindex(index).to_numpy(float), quantiles,
                                   np.full(len(windows), np.nan), fallback=np.zeros(len(windows), bool), parse_rate=parsed))
    return pd.concat(frames, ignore_index=True)


def challenger_rows(windows: Windows, names: tuple[str, ...], origin: str, horizon: int) -> pd.DataFrame:
    """Each challenger's recursive point path, with its Gaussian 10–90 band at Q+1."""
    frames = []
    first = challenger_forecasts(windows.history, names)
    for name in names:
        histories, forecast = windows.history, first[name]
        for h in range(1, horizon + 1):
            if h > 1:
                histories = np.concatenate([histories[:, 1:], forecast.mean[:, None]], axis=1)
                forecast = challenger_forecasts(histories, [name])[name]
            std = forecast.std if h == 1 else np.full(len(windows), np.nan)
            quantiles = (forecast.mean - Z90 * std, np.where(np.isnan(std), np.nan, forecast.mean), forecast.mean + Z90 * std)
            frames.append(forward_rows(windows, origin, h, name, forecast.mean, quantiles, std, fallback=forecast.fallback,
                                       parse_rate=np.full(len(windows), np.nan)))
    return pd.concat(frames, ignore_index=True)


def forward_rows(windows: Windows, origin: str, horizon: int, model: str, point, quantiles, std, **extra) -> pd.DataFrame:
    """One model's rows for one quarter of the horizon, one per series of ``windows``, in their order."""
    q10, q50, q90 = quantiles
    return pd.DataFrame({
        "origin": origin,
        "quarter": shift(origin, horizon),
        "horizon": horizon,
        "entity_id": windows.keys["entity_id"].to_numpy(),
        "segment": windows.keys["segment"].to_numpy(),
        "model": model,
        "last": windows.history[:, -1],
        "scale": naive_scale(windows.history),
        "point": np.asarray(point, float), "q10": q10, "q50": q50, "q90": q90, "std": np.asarray(std, float),
        **extra,
    })

"""The allowance booked at quarter-end Q: the forward forecast and the portfolio to an allowance per pool, overlays and the roll-forward.

Each pool (entity × segment) takes its series' forecast from ``forward_forecasts[Q]`` (the policy's
median path over the reasonable-and-supportable horizon; where the policy gave no parsed answer, the
``naive_comb`` challenger's path, flagged in ``forecast_source``), reverts in a straight line to the series'
long-run mean over R quarters (``forecast.reversion``), and loses that path on its amortizing balance
over its remaining life (``forecast.allowance``, WARM). Qualitative adjustments are added per
segment, in basis points of the segment's amortized cost, and listed apart from the model.

The roll-forward splits the change against the previous quarter's allowance three ways, per pool:
- balance effect: last quarter's loss-to-cost ratio on this quarter's balance, less last quarter's
  allowance (a new pool's whole allowance; a pool that left, minus its allowance);
- forecast effect: this quarter's model allowance less that same ratio on this quarter's balance;
- overlay effect: this quarter's overlays less last quarter's.
The three add up to the change, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cecl_pipeline.forecast.allowance import check_weights, life_quarters, lifetime_loss, probability_weighted
from cecl_pipeline.forecast.reversion import reversion_path
from cecl_pipeline.forecast.walkforward import POLICY_MODEL
from cecl_pipeline.panel.portfolio import COST, LIFE, POOL_KEY, PREPAYMENT

POOLS = list(POOL_KEY)
FALLBACK_MODELS = ("naive_comb", "persistence")  # stands in, whole path, for a series the policy could not answer
BASIS_POINT = 1e-4


class MissingForecastError(ValueError):
    """Pools of the portfolio with no forward forecast for some quarter of the horizon."""


@dataclass
class Booking:
    quarter: str
    pools: pd.DataFrame  # one row per pool: the portfolio's columns, its forecast, lifetime loss and loss rate
    overlays: pd.DataFrame  # one row per adjustment, with its amount
    by_segment: pd.DataFrame  # cost, model allowance, overlays and the allowance per segment, with a total row
    roll_forward: pd.DataFrame  # per segment and in total: previous allowance, the three effects, this allowance
    paths: pd.DataFrame  # per scenario, pool and future quarter k = 1 … life: the loss rate used (forecast, then reversion)
    by_scenario: pd.DataFrame  # per segment and in total: the model allowance under each scenario, its weight, and the weighted one


def policy_paths(forecasts: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The policy's median path per series ([series, H], columns = horizon) and the source of its path.

    A series where the policy gave no parsed answer for some quarter takes the whole path of the first
    of ``FALLBACK_MODELS`` that the forecast holds, and its source says so.
    """
    wide = forecasts.pivot_table(index=POOLS, columns=["model", "horizon"], values="point", dropna=False, aggfunc="first")
    paths = wide[POLICY_MODEL].sort_index(axis=1)
    source = pd.Series(POLICY_MODEL, index=paths.index)
    fallback = next((m for m in FALLBACK_MODELS if m in wide.columns.get_level_values(0)), None)
    missing = paths.isna().any(axis=1)
    if fallback and missing.any():
        paths.loc[missing] = wide[fallback].sort_index(axis=1).loc[missing].to_numpy()
        source[missing] = f"{fallback} (the policy gave no parsed answer)"
    return paths, source


@dataclass
class ScenarioLoss:
    """One scenario's lifetime loss per pool, the rate paths behind it, its first forecast quarter and where its path came from."""

    loss: np.ndarray
    rates: np.ndarray
    forecast_next: np.ndarray
    source: np.ndarray


def book(quarter: str, pools: pd.DataFrame, forecasts: pd.DataFrame, overlays: pd.DataFrame, reversion_quarters: int,
         previous: tuple[pd.DataFrame, pd.DataFrame] | None = None, weights: dict[str, float] | None = None) -> Booking:
    """The allowance at quarter-end ``quarter`` for ``pools`` (``panel.portfolio``), from ``forward_forecasts[quarter]``.

    Each scenario of the forecast gives a lifetime loss per pool; the model allowance is their
    ``weights``-weighted sum (``None``: a forecast with one scenario, which weighs 1).
    """
    scenarios = list(dict.fromkeys(forecasts["scenario"]))
    weights = weights if weights is not None else ({scenarios[0]: 1.0} if len(scenarios) == 1 else {})
    check_weights(weights, scenarios)
    index = pd.MultiIndex.from_frame(pools[POOLS])
    means = forecasts.groupby(POOLS)["long_run_mean"].first().reindex(index).to_numpy(float)
    losses = {s: scenario_loss(forecasts[forecasts["scenario"] == s], pools, index, means, reversion_quarters, quarter) for s in scenarios}
    loss = probability_weighted({s: r.loss for s, r in losses.items()}, weights)
    booked = pools[[*POOLS, COST, LIFE, PREPAYMENT]].assign(
        forecast_source=["; ".join(dict.fromkeys(v)) for v in zip(*(r.source for r in losses.values()), strict=True)],
        forecast_next=sum(weights[s] * r.forecast_next for s, r in losses.items()),
        long_run_mean=means, model_allowance=loss,
        loss_rate_pct=np.where(pools[COST] > 0, loss / pools[COST].where(pools[COST] > 0) * 100, 0.0))
    amounts = overlay_amounts(overlays, booked)
    by_segment = segment_table(booked, amounts)
    paths = pd.concat([_long_paths(pools, r.rates).assign(scenario=s) for s, r in losses.items()], ignore_index=True)
    return Booking(quarter, booked, amounts, by_segment, roll_forward(booked, amounts, previous), paths,
                   scenario_table(booked, losses, weights))


def scenario_loss(forecasts: pd.DataFrame, pools: pd.DataFrame, index: pd.MultiIndex, means: np.ndarray, reversion_quarters: int,
                  quarter: str) -> ScenarioLoss:
    """One scenario's forecast, reverted to the long-run means and lost on each pool's amortizing balance."""
    paths, source = policy_paths(forecasts)
    forecast = paths.reindex(index)
    _check_covered(pools, forecast, quarter)
    quarters = max(life_quarters(pools[LIFE]), forecast.shape[1])
    rates = reversion_path(forecast.to_numpy(float), means, reversion_quarters, quarters)
    loss = lifetime_loss(rates, pools[COST], pools[LIFE], pools[PREPAYMENT])
    return ScenarioLoss(loss, rates, forecast.iloc[:, 0].to_numpy(float), source.reindex(index).to_numpy())


def scenario_table(pools: pd.DataFrame, losses: dict[str, ScenarioLoss], weights: dict[str, float]) -> pd.DataFrame:
    """Per segment and in total: the model allowance under each scenario (weight in the header) and the weighted one."""
    frame = pools[["segment"]].assign(**{f"{s} (weight {weights[s]:g})": r.loss for s, r in losses.items()}, weighted=pools["model_allowance"])
    table = frame.groupby("segment", sort=True).sum()
    return pd.concat([table, table.sum().to_frame("total").T]).rename_axis("segment").reset_index()


def _check_covered(pools: pd.DataFrame, forecast: pd.DataFrame, quarter: str) -> None:
    missing = forecast.isna().any(axis=1).to_numpy()
    if missing.any():
        listed = [f"row {r} ({e} / {s})" for r, e, s in pools.loc[missing, ["source_row", *POOLS]].head(10).itertuples(index=False)]
        more = f" and {missing.sum() - len(listed)} more" if missing.sum() > len(listed) else ""
        raise MissingForecastError(f"{pools['source_file'].iloc[0]}: {missing.sum()} pool(s) have no forward forecast for every quarter of the "
                                   f"horizon (its series has gaps in the 12 quarters up to {quarter}): {', '.join(listed)}{more}")


def overlay_amounts(overlays: pd.DataFrame, pools: pd.DataFrame) -> pd.DataFrame:
    """Each adjustment with its amount: basis points of its segment's amortized cost."""
    cost = pools.groupby("segment")[COST].sum()
    return overlays.assign(segment_cost=overlays["segment"].map(cost).fillna(0.0),
                           amount=lambda o: o["adjustment_bp"] * BASIS_POINT * o["segment_cost"])


def segment_table(pools: pd.DataFrame, overlays: pd.DataFrame) -> pd.DataFrame:
    """Cost, model allowance, overlays and allowance per segment, and the total; rates in % of cost."""
    table = pools.groupby("segment", sort=True).agg(pools=(COST, "size"), amortized_cost=(COST, "sum"),
                                                    model_allowance=("model_allowance", "sum"))
    table["overlays"] = overlays.groupby("segment")["amount"].sum().reindex(table.index).fillna(0.0)
    total = table.sum().to_frame("total").T
    table = pd.concat([table, total]).rename_axis("segment").reset_index()
    table["allowance"] = table["model_allowance"] + table["overlays"]
    table["allowance_pct_of_cost"] = np.where(table["amortized_cost"] > 0, table["allowance"] / table["amortized_cost"].where(
        table["amortized_cost"] > 0) * 100, 0.0)
    return table


def roll_forward(pools: pd.DataFrame, overlays: pd.DataFrame, previous: tuple[pd.DataFrame, pd.DataFrame] | None) -> pd.DataFrame:
    """Previous allowance → balance, forecast and overlay effects → this allowance, per segment and in total."""
    before_pools, before_overlays = previous if previous is not None else (pools.iloc[:0], overlays.iloc[:0])
    both = pools.merge(before_pools[[*POOLS, COST, "model_allowance"]], on=POOLS, how="outer", suffixes=("", "_before"))
    both = both.fillna({COST: 0.0, "model_allowance": 0.0, f"{COST}_before": 0.0, "model_allowance_before": 0.0})
    ratio = np.where(both[f"{COST}_before"] > 0, both["model_allowance_before"] / both[f"{COST}_before"].where(both[f"{COST}_before"] > 0), 0.0)
    was_there = both[f"{COST}_before"] > 0
    at_last_ratio = np.where(was_there, ratio * both[COST], both["model_allowance"])  # a new pool: all of it is balance
    frame = pd.DataFrame({
        "segment": both["segment"],
        "previous_allowance": both["model_allowance_before"],
        "balance_effect": at_last_ratio - both["model_allowance_before"],
        "forecast_effect": both["model_allowance"] - at_last_ratio,
    })
    table = frame.groupby("segment", sort=True).sum()
    now, before = (o.groupby("segment")["amount"].sum() for o in (overlays, before_overlays))
    segments = table.index.union(now.index).union(before.index)
    table = table.reindex(segments).fillna(0.0)
    table["previous_allowance"] += before.reindex(segments).fillna(0.0)
    table["overlay_effect"] = now.reindex(segments).fillna(0.0) - before.reindex(segments).fillna(0.0)
    table["allowance"] = table[["previous_allowance", "balance_effect", "forecast_effect", "overlay_effect"]].sum(axis=1)
    total = table.sum().to_frame("total").T
    return pd.concat([table, total]).rename_axis("segment").reset_index()


def _long_paths(pools: pd.DataFrame, rates: np.ndarray) -> pd.DataFrame:
    k = np.arange(1, rates.shape[1] + 1)
    return pd.DataFrame({
        "entity_id": np.repeat(pools["entity_id"].to_numpy(), len(k)),
        "segment": np.repeat(pools["segment"].to_numpy(), len(k)),
        "quarter_ahead": np.tile(k, len(pools)),
        "loss_rate": rates.reshape(-1),
    })

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

from cecl_pipeline.forecast.allowance import life_quarters, lifetime_loss
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
    paths: pd.DataFrame  # per pool and future quarter k = 1 … life: the loss rate used (forecast, then reversion)


def policy_paths(forecasts: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The policy's median path per series ([series, H], columns = horizon), each series' long-run mean, and the source of its path.

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
    means = forecasts.groupby(POOLS)["long_run_mean"].first()
    return paths, means, source


def book(quarter: str, pools: pd.DataFrame, forecasts: pd.DataFrame, overlays: pd.DataFrame, reversion_quarters: int,
         previous: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> Booking:
    """The allowance at quarter-end ``quarter`` for ``pools`` (``panel.portfolio``), from ``forward_forecasts[quarter]``."""
    paths, means, source = policy_paths(forecasts)
    index = pd.MultiIndex.from_frame(pools[POOLS])
    forecast = paths.reindex(index)
    _check_covered(pools, forecast, quarter)
    quarters = max(life_quarters(pools[LIFE]), forecast.shape[1])
    rates = reversion_path(forecast.to_numpy(float), means.reindex(index).to_numpy(float), reversion_quarters, quarters)
    loss = lifetime_loss(rates, pools[COST], pools[LIFE], pools[PREPAYMENT])
    booked = pools[[*POOLS, COST, LIFE, PREPAYMENT]].assign(
        forecast_source=source.reindex(index).to_numpy(), forecast_next=forecast.iloc[:, 0].to_numpy(float),
        long_run_mean=means.reindex(index).to_numpy(float), model_allowance=loss,
        loss_rate_pct=np.where(pools[COST] > 0, loss / pools[COST].where(pools[COST] > 0) * 100, 0.0))
    amounts = overlay_amounts(overlays, booked)
    by_segment = segment_table(booked, amounts)
    return Booking(quarter, booked, amounts, by_segment, roll_forward(booked, amounts, previous), _long_paths(pools, rates))


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

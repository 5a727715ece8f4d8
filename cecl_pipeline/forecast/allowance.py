"""The CECL allowance arithmetic (WARM): lifetime loss = Σ over the remaining life of quarterly loss rate × amortizing balance.

A pool (entity × segment) holds its amortized cost, its weighted-average remaining life L in
quarters and, optionally, an annual prepayment rate p (a fraction: 0.08 is 8% a year). Its balance
runs off in a straight line to zero at L; prepayment scales what is left by (1 − p)^(t/4) after t
quarters, taken at each quarter's midpoint.

The NCO rate is annualized net charge-offs over the *average* loans of the quarter, in percent, so a
quarter's loss is rate / 400 × the quarter's average balance: for a full quarter k ≤ L that is the
balance at its midpoint, cost × (1 − (k − ½)/L); the last, partial quarter counts only the part of
it inside the life. Negative rates (net recoveries) lower the sum; no floor is applied here.
"""

from __future__ import annotations

import math

import numpy as np

from cecl_pipeline.panel.scenario_weights import WEIGHT_TOLERANCE

QUARTERS_PER_YEAR = 4


def life_quarters(remaining_life) -> int:
    """How many future quarters the longest life reaches into (a rate path must be this long)."""
    life = np.asarray(remaining_life, float)
    return math.ceil(float(life.max())) if life.size else 0


def average_balances(amortized_cost, remaining_life, annual_prepayment=0.0, quarters: int | None = None) -> np.ndarray:
    """[N] pools → [N, quarters]: each pool's average balance in each future quarter (0 after its life)."""
    cost, life = np.asarray(amortized_cost, float), np.asarray(remaining_life, float)
    prepayment = np.broadcast_to(np.asarray(annual_prepayment, float), cost.shape)
    _check_pools(cost, life, prepayment)
    quarters = life_quarters(life) if quarters is None else quarters
    start = np.arange(quarters, dtype=float)[None, :]  # quarter k spans [k − 1, k]; these are k − 1
    end = np.minimum(start + 1, life[:, None])
    inside = np.clip(end - start, 0.0, None)
    share_outstanding = inside - np.where(inside > 0, (end**2 - start**2) / (2 * life[:, None]), 0.0)  # ∫ (1 − t/L) dt over the quarter
    survival = (1 - prepayment[:, None]) ** ((start + 0.5) / QUARTERS_PER_YEAR)
    return cost[:, None] * share_outstanding * survival


def lifetime_loss(rates, amortized_cost, remaining_life, annual_prepayment=0.0) -> np.ndarray:
    """Expected lifetime loss per pool, in the currency of ``amortized_cost``: [N, T] annualized rates in % → [N].

    ``rates`` must reach the end of the longest life (``life_quarters``); quarters beyond a pool's life do not count.
    """
    rates = np.atleast_2d(np.asarray(rates, float))
    needed = life_quarters(remaining_life)
    if rates.shape[1] < needed:
        raise ValueError(f"the rate path covers {rates.shape[1]} quarters, but the longest remaining life needs {needed}")
    balances = average_balances(amortized_cost, remaining_life, annual_prepayment, rates.shape[1])
    if rates.shape[0] != balances.shape[0]:
        raise ValueError(f"{rates.shape[0]} rate path(s) for {balances.shape[0]} pool(s)")
    return (rates / 100 / QUARTERS_PER_YEAR * balances).sum(axis=1)


def probability_weighted(by_scenario: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Σ weight × allowance over the scenarios; the weights must name exactly these scenarios, be ≥ 0 and sum to 1."""
    check_weights(weights, by_scenario)
    return sum(weights[name] * np.asarray(by_scenario[name], float) for name in by_scenario)


def check_weights(weights: dict[str, float], scenarios) -> None:
    """Refuse weights that are negative, do not sum to 1, or do not name exactly ``scenarios``; the message says which."""
    missing, unknown = sorted(set(scenarios) - set(weights)), sorted(set(weights) - set(scenarios))
    if missing or unknown:
        raise ValueError(f"scenario weights: no weight for {missing or 'none'}; weights for unknown scenarios {unknown or 'none'}")
    negative = {name: w for name, w in weights.items() if not w >= 0}
    if negative:
        raise ValueError(f"scenario weights must be ≥ 0: {negative}")
    total = math.fsum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"scenario weights must sum to 1, they sum to {total:g}: {weights}")


def _check_pools(cost: np.ndarray, life: np.ndarray, prepayment: np.ndarray) -> None:
    if cost.shape != life.shape or cost.ndim != 1:
        raise ValueError(f"amortized cost and remaining life must be [N] arrays of one length, got {cost.shape} and {life.shape}")
    if not (np.isfinite(cost).all() and (cost >= 0).all()):
        raise ValueError("amortized cost must be finite and ≥ 0")
    if not (np.isfinite(life).all() and (life > 0).all()):
        raise ValueError("remaining life must be finite and > 0 quarters")
    if not ((prepayment >= 0) & (prepayment < 1)).all():
        raise ValueError("the annual prepayment rate must be a fraction in [0, 1)")

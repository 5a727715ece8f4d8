"""The synthetic default's portfolio: one pool per bank and segment of the panel's last quarter, seeded.

Remaining lives and prepayment speeds are typical of each product (cards revolve within two years,
mortgages carry seven years of remaining life and prepay about 8% a year); amounts, in thousands of
dollars as in the panel, vary by bank around a segment's typical book.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cecl_pipeline.panel.portfolio import COST, LIFE, PREPAYMENT

_PORTFOLIO_STREAM = 2  # a random stream of its own, so the portfolio never moves the panel's draws
# segment: (typical amortized cost in $ thousands, remaining life in quarters, annual prepayment rate)
SEGMENT_TERMS = {
    "credit_card": (400_000.0, 8.0, 0.0),
    "commercial_real_estate": (1_500_000.0, 16.0, 0.05),
    "residential_mortgage": (2_000_000.0, 28.0, 0.08),
    "commercial_industrial": (1_000_000.0, 10.0, 0.10),
}


def synthesize_portfolio(keys: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A pool for each (entity_id, segment) of ``keys`` whose segment has terms, in ``keys``' order."""
    pools = keys[keys["segment"].isin(list(SEGMENT_TERMS))].reset_index(drop=True)
    rng = np.random.default_rng([seed, _PORTFOLIO_STREAM])
    typical, life, prepayment = (pools["segment"].map({s: terms[k] for s, terms in SEGMENT_TERMS.items()}).to_numpy(float) for k in range(3))
    return pools.assign(**{
        COST: np.round(typical * rng.lognormal(0.0, 0.6, len(pools)), 0),
        LIFE: np.round(life * rng.uniform(0.8, 1.2, len(pools)), 1),
        PREPAYMENT: prepayment,
    })

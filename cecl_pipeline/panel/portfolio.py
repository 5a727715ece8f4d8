"""A quarter's portfolio file (``raw/portfolio/<YYYYQn>.csv``): the pools the allowance is booked on, checked cell by cell.

One row per pool, keyed by entity and segment: its amortized cost (≥ 0), its weighted-average
remaining life in quarters (> 0) and, optionally, an annual prepayment rate as a fraction in [0, 1)
(blank: none). A segment the NCO panel does not know, a duplicate key, a negative cost or a missing
or non-positive life is refused, every offence listed with its row and column, and nothing is read.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.readers import collect_offences, parse_numbers, read_raw_table, require_columns, required_text

POOL_KEY = ("entity_id", "segment")
COST, LIFE, PREPAYMENT = "amortized_cost", "remaining_life_quarters", "prepayment_rate"
PORTFOLIO_COLUMNS = (*POOL_KEY, COST, LIFE, PREPAYMENT)


def read_portfolio_file(path: Path, known_segments: Collection[str]) -> pd.DataFrame:
    """The pools of ``path`` (``PORTFOLIO_COLUMNS`` plus ``source_file``, ``source_row``); a DropFileError names every bad cell."""
    path = Path(path)
    frame = read_raw_table(path)
    require_columns(frame, path, (*POOL_KEY, COST, LIFE))
    offences: list[Offence] = []
    counts: list[int] = []
    out = pd.DataFrame(index=frame.index)
    for column in POOL_KEY:
        out[column] = required_text(frame, column, offences, counts)
    unknown = out["segment"].notna() & (out["segment"] != "") & ~out["segment"].isin(list(known_segments))
    collect_offences(offences, counts, frame, unknown, "segment", f"unknown segment: the NCO panel has {', '.join(sorted(known_segments))}")
    numbers = parse_numbers(frame, (COST, LIFE, PREPAYMENT), offences, counts)
    _check_amounts(frame, numbers, offences, counts)
    _check_duplicates(frame, out, offences, counts)
    if offences:
        offences.sort(key=lambda o: o.row or 0)
        raise DropFileError(path, "the portfolio cannot be used; nothing was read", offences, total=sum(counts))
    out[COST], out[LIFE], out[PREPAYMENT] = numbers[COST], numbers[LIFE], numbers[PREPAYMENT].fillna(0.0)
    out["source_file"], out["source_row"] = path.name, frame["__row__"].astype("int64")
    return out.reset_index(drop=True)


def _check_amounts(frame: pd.DataFrame, numbers: dict[str, pd.Series], offences: list[Offence], counts: list[int]) -> None:
    cost, life, prepayment = numbers[COST], numbers[LIFE], numbers[PREPAYMENT]
    given_cost = required_text(frame, COST, offences, counts).fillna("") != ""
    collect_offences(offences, counts, frame, given_cost & ~(np.isfinite(cost) & (cost >= 0)) & cost.notna(), COST,
                     "must be a finite amount ≥ 0")
    given_life = required_text(frame, LIFE, offences, counts).fillna("") != ""
    collect_offences(offences, counts, frame, given_life & ~(np.isfinite(life) & (life > 0)) & life.notna(), LIFE,
                     "must be a finite number of quarters > 0")
    if PREPAYMENT in frame.columns:
        collect_offences(offences, counts, frame, prepayment.notna() & ~((prepayment >= 0) & (prepayment < 1)), PREPAYMENT,
                         "must be an annual fraction in [0, 1), e.g. 0.08 for 8%")


def _check_duplicates(frame: pd.DataFrame, keys: pd.DataFrame, offences: list[Offence], counts: list[int]) -> None:
    repeated = keys.duplicated(list(POOL_KEY), keep="first") & keys.notna().all(axis=1)
    if repeated.any():
        first_rows = frame["__row__"].groupby([keys[c] for c in POOL_KEY]).transform("first")
        bad = np.flatnonzero(repeated.to_numpy())
        counts.append(len(bad))
        offences.extend(Offence(int(frame["__row__"].iloc[i]), "segment", f"{keys['entity_id'].iloc[i]} / {keys['segment'].iloc[i]}",
                                f"duplicate pool: the same entity and segment as row {int(first_rows.iloc[i])}") for i in bad[:20])

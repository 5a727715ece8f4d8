"""Quarter labels (``2019Q1``) and the Dagster partition keys behind them (``2019-01-01``).

People read and type labels; Dagster's quarterly partitions are keyed by the quarter's first day.
Everything converts through this module. Quarters also have an integer ordinal (year*4 + q-1)
so that windows and gaps are plain integer arithmetic, vectorised over pandas columns.
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd

_LABEL = re.compile(r"^\s*(\d{4})\s*[Qq]([1-4])\s*$")
_KEY = re.compile(r"^\s*(\d{4})-(01|04|07|10)-01\s*$")


class QuarterError(ValueError):
    """A string that is neither a quarter label nor a quarter-start date."""


def to_ordinal(quarter: str) -> int:
    """``2019Q1`` or ``2019-01-01`` → 8076."""
    if m := _LABEL.match(quarter):
        return int(m.group(1)) * 4 + int(m.group(2)) - 1
    if m := _KEY.match(quarter):
        return int(m.group(1)) * 4 + (int(m.group(2)) - 1) // 3
    raise QuarterError(f"{quarter!r} is not a quarter: use a label like 2019Q1 (or the partition key 2019-01-01)")


def from_ordinal(ordinal: int) -> str:
    return f"{ordinal // 4}Q{ordinal % 4 + 1}"


def label(quarter: str) -> str:
    """Normalise a label or partition key to the canonical label ``2019Q1``."""
    return from_ordinal(to_ordinal(quarter))


def to_partition_key(quarter: str) -> str:
    """``2019Q1`` → ``2019-01-01``."""
    o = to_ordinal(quarter)
    return f"{o // 4}-{(o % 4) * 3 + 1:02d}-01"


def shift(quarter: str, n: int) -> str:
    return from_ordinal(to_ordinal(quarter) + n)


def quarter_range(first: str, last: str) -> list[str]:
    """Inclusive range of labels, in order."""
    a, b = to_ordinal(first), to_ordinal(last)
    if b < a:
        raise QuarterError(f"quarter range {label(first)}..{label(last)} is empty: the end is before the start")
    return [from_ordinal(o) for o in range(a, b + 1)]


def quarter_end(quarter: str) -> datetime.date:
    """The last day of the quarter: ``2019Q1`` → 2019-03-31."""
    following = to_ordinal(quarter) + 1
    return datetime.date(following // 4, (following % 4) * 3 + 1, 1) - datetime.timedelta(days=1)


def latest_due_quarter(today: datetime.date, days_after_end: int) -> str:
    """The latest quarter that ended at least ``days_after_end`` days before ``today``."""
    o = (today.year * 4 + (today.month - 1) // 3) - 1  # the quarter before today's
    while quarter_end(from_ordinal(o)) + datetime.timedelta(days=days_after_end) > today:
        o -= 1
    return from_ordinal(o)


def ordinals(labels: pd.Series) -> pd.Series:
    """Vectorised label → ordinal; unparseable entries become <NA>."""
    parts = labels.astype("string").str.strip().str.upper().str.extract(r"^(\d{4})Q([1-4])$")
    year = pd.to_numeric(parts[0], errors="coerce")
    q = pd.to_numeric(parts[1], errors="coerce")
    return (year * 4 + q - 1).astype("Int64")


def labels_from_ordinals(values: np.ndarray | pd.Series) -> pd.Series:
    """Vectorised ordinal → label."""
    o = pd.Series(values).astype("int64")
    return (o // 4).astype(str) + "Q" + (o % 4 + 1).astype(str)


def normalise_quarter_column(values: pd.Series) -> pd.Series:
    """Labels, lower-case labels or quarter-start dates → canonical labels; anything else → <NA>.

    A column holds few distinct quarters, so only the distinct values are parsed.
    """
    codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
    parsed = _normalise_distinct(pd.Series(uniques, dtype="string")).to_numpy(dtype=object)
    out = np.where(codes >= 0, parsed[np.maximum(codes, 0)] if len(parsed) else None, None)
    return pd.Series(out, index=values.index, dtype="string")


def _normalise_distinct(values: pd.Series) -> pd.Series:
    text = values.str.strip()
    as_label = ordinals(text)
    dates = text.str.extract(r"^(\d{4})-(01|04|07|10)-01$")
    as_date = pd.to_numeric(dates[0], errors="coerce") * 4 + (pd.to_numeric(dates[1], errors="coerce") - 1) // 3
    combined = as_label.fillna(as_date.astype("Int64"))
    out = pd.Series(pd.NA, index=values.index, dtype="string")
    ok = combined.notna()
    out[ok] = labels_from_ordinals(combined[ok].to_numpy()).to_numpy()
    return out

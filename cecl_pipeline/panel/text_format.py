"""Number → text for prompts and answers, vectorised with pyarrow compute (no per-row Python).

Rates are written with three significant digits and between two and four decimals
(``rate_decimals``): 3.45 and 12.34 keep the two decimals the Fed publishes, while a mortgage
segment at 0.0432% keeps what tells it apart from 0.0449%. Prompts (``rates``) and the answers we
write (``format_rate``) use the same rule, so a model reads and writes numbers the same way.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING = "n/a"
RATE_SIGNIFICANT_DIGITS = 3
RATE_MIN_DECIMALS, RATE_MAX_DECIMALS = 2, 4


def fixed(values: np.ndarray, decimals: int = 2, signed: bool = False) -> pa.Array:
    """Format floats with a fixed number of decimals; NaN/inf → "n/a". ``signed`` adds "+" to positives."""
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    scaled = np.rint(np.where(finite, values, 0.0) * 10**decimals).astype(np.int64)
    magnitude = np.abs(scaled)
    whole = pc.cast(pa.array(magnitude // 10**decimals), pa.string())
    text = whole
    if decimals:
        frac = pc.utf8_lpad(pc.cast(pa.array(magnitude % 10**decimals), pa.string()), width=decimals, padding="0")
        text = pc.binary_join_element_wise(whole, frac, ".")
    positive_sign = "+" if signed else ""
    sign = pa.array(np.where(scaled < 0, "-", np.where(scaled > 0, positive_sign, "")))
    text = pc.binary_join_element_wise(sign, text, "")
    return pc.if_else(pa.array(finite), text, pa.scalar(MISSING))


def rate_decimals(values) -> np.ndarray:
    """Decimals that give each value three significant digits, clipped to 2–4 (2 for zero and non-finite values)."""
    magnitude = np.abs(np.asarray(values, dtype="float64"))
    usable = np.isfinite(magnitude) & (magnitude > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wanted = RATE_SIGNIFICANT_DIGITS - 1 - np.floor(np.log10(np.where(usable, magnitude, 1.0)))
    return np.clip(np.where(usable, wanted, RATE_MIN_DECIMALS), RATE_MIN_DECIMALS, RATE_MAX_DECIMALS).astype(np.int64)


def rates(values: np.ndarray, signed: bool = False) -> pa.Array:
    """Rates (or changes in rates) as prompt text, each with its ``rate_decimals``; NaN/inf → "n/a"."""
    values = np.asarray(values, dtype="float64")
    decimals = rate_decimals(values)
    text = fixed(values, RATE_MIN_DECIMALS, signed)
    for count in range(RATE_MIN_DECIMALS + 1, RATE_MAX_DECIMALS + 1):
        if (decimals == count).any():
            text = pc.if_else(pa.array(decimals == count), fixed(values, count, signed), text)
    return text


def format_rate(value: float) -> str:
    """One rate written as ``rates`` writes it (for answers rendered in Python)."""
    if not math.isfinite(value):
        return MISSING
    return rates(np.array([value])).to_pylist()[0]


def join_lines(parts: list, separator: str = "\n") -> pa.Array:
    """Element-wise join of string arrays and scalars."""
    return pc.binary_join_element_wise(*parts, separator)

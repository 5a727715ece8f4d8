"""Vectorised number → text formatting with pyarrow compute (no per-row Python)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING = "n/a"


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


def join_lines(parts: list, separator: str = "\n") -> pa.Array:
    """Element-wise join of string arrays and scalars."""
    return pc.binary_join_element_wise(*parts, separator)

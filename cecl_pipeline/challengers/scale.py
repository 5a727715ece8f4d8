"""A series' own scale: the in-sample mean absolute quarter-on-quarter change (the MASE denominator)."""

from __future__ import annotations

import numpy as np

SCALE_FLOOR = 0.01  # percentage points: the rounding unit of published NCO rates, so a flat series still has a scale


def naive_scale(histories, floor: float = SCALE_FLOOR) -> np.ndarray:
    """Mean |y_t − y_{t−1}| over each history (rows of an [N, T] array, or a list of 1-D arrays), at least ``floor``.

    NaN values in a history are skipped; a history with no finite change gets ``floor``.
    """
    rows = [np.asarray(h, float) for h in histories] if not isinstance(histories, np.ndarray) or histories.ndim != 2 else list(histories)
    scales = np.empty(len(rows))
    for i, row in enumerate(rows):
        changes = np.abs(np.diff(row))
        changes = changes[np.isfinite(changes)]
        scales[i] = changes.mean() if changes.size else floor
    return np.maximum(scales, floor)

"""A quarter's scenario weights (``raw/scenario_weights/<YYYYQn>.csv``): how much each scenario's allowance counts.

One row per scenario forecast at quarter-end Q: its key (as stored by ``cecl import-scenario``) and
its probability weight. Every forecast scenario needs a weight, each weight is a finite number ≥ 0,
and together they sum to 1. A blank or unknown scenario, a duplicate, a bad weight or a total that is
not 1 is refused with its row and column, and nothing is read.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path

import numpy as np

from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.readers import collect_offences, parse_numbers, read_raw_table, require_columns, required_text

SCENARIO, WEIGHT = "scenario", "weight"
WEIGHT_TOLERANCE = 1e-6


def read_weights_file(path: Path, scenarios: Collection[str]) -> dict[str, float]:
    """Scenario key → weight from ``path``, for exactly ``scenarios`` (the ones forecast); a DropFileError names every bad cell."""
    path = Path(path)
    frame = read_raw_table(path)
    require_columns(frame, path, (SCENARIO, WEIGHT))
    offences: list[Offence] = []
    counts: list[int] = []
    names = required_text(frame, SCENARIO, offences, counts)
    known = names.notna() & (names != "")
    collect_offences(offences, counts, frame, known & ~names.isin(list(scenarios)), SCENARIO,
                     f"not a scenario of this forecast, which has {', '.join(sorted(scenarios))}")
    collect_offences(offences, counts, frame, known & names.duplicated(keep="first"), SCENARIO, "a second weight for this scenario")
    weights = parse_numbers(frame, (WEIGHT,), offences, counts)[WEIGHT]
    given = required_text(frame, WEIGHT, offences, counts).fillna("") != ""
    collect_offences(offences, counts, frame, given & weights.notna() & ~(np.isfinite(weights) & (weights >= 0)), WEIGHT,
                     "must be a finite weight ≥ 0")
    missing = sorted(set(scenarios) - set(names.dropna()))
    if missing:
        offences.append(Offence(None, SCENARIO, None, f"no weight for the forecast scenario(s) {', '.join(missing)}"))
        counts.append(1)
    if not offences and abs(math.fsum(weights) - 1.0) > WEIGHT_TOLERANCE:
        rows = frame["__row__"].tolist()
        offences.append(Offence(None, WEIGHT, None, f"the weights on rows {rows[0]}–{rows[-1]} sum to {math.fsum(weights):g}, not 1"))
        counts.append(1)
    if offences:
        offences.sort(key=lambda o: o.row or 0)
        raise DropFileError(path, "the scenario weights cannot be used; nothing was read", offences, total=sum(counts))
    return dict(zip(names, weights.astype(float), strict=True))

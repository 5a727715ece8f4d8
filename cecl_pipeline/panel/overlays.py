"""A quarter's qualitative adjustments (``raw/overlays/<YYYYQn>.csv``): management overlays kept apart from the model.

One row per adjustment: the segment it applies to, the adjustment in basis points of the segment's
amortized cost (negative lowers the allowance), the reason and who approved it. A segment may carry
several. A segment the portfolio does not hold, a blank reason or approver, or an adjustment that is
not a finite number is refused, every offence listed with its row and column, and nothing is read.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.readers import collect_offences, parse_numbers, read_raw_table, require_columns, required_text

SEGMENT, BASIS_POINTS, REASON, APPROVER = "segment", "adjustment_bp", "reason", "approver"
OVERLAY_COLUMNS = (SEGMENT, BASIS_POINTS, REASON, APPROVER)


def read_overlay_file(path: Path, known_segments: Collection[str]) -> pd.DataFrame:
    """The adjustments of ``path`` (``OVERLAY_COLUMNS`` plus ``source_file``, ``source_row``); a DropFileError names every bad cell."""
    path = Path(path)
    frame = read_raw_table(path)
    require_columns(frame, path, OVERLAY_COLUMNS)
    offences: list[Offence] = []
    counts: list[int] = []
    out = pd.DataFrame({column: required_text(frame, column, offences, counts) for column in (SEGMENT, REASON, APPROVER)}, index=frame.index)
    unknown = out[SEGMENT].notna() & (out[SEGMENT] != "") & ~out[SEGMENT].isin(list(known_segments))
    collect_offences(offences, counts, frame, unknown, SEGMENT, f"unknown segment: the portfolio has {', '.join(sorted(known_segments))}")
    bp = parse_numbers(frame, (BASIS_POINTS,), offences, counts)[BASIS_POINTS]
    given = required_text(frame, BASIS_POINTS, offences, counts).fillna("") != ""
    collect_offences(offences, counts, frame, given & bp.notna() & ~np.isfinite(bp), BASIS_POINTS, "must be a finite number of basis points")
    if offences:
        offences.sort(key=lambda o: o.row or 0)
        raise DropFileError(path, "the overlays cannot be used; nothing was read", offences, total=sum(counts))
    out[BASIS_POINTS] = bp
    out["source_file"], out["source_row"] = path.name, frame["__row__"].astype("int64")
    return out[[*OVERLAY_COLUMNS, "source_file", "source_row"]].reset_index(drop=True)

"""Ingest one quarter: drop file → panel frame → validation → accepted or rejected Parquet.

Validation runs before anything is written. A quarter that passes every blocking check replaces
``processed/nco_panel/<Q>.parquet``; one that fails goes to ``processed/rejected/`` and the accepted
file is left untouched, so everything downstream reads only validated data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cecl_pipeline.panel.readers import read_macro_file, read_panel_file
from cecl_pipeline.panel.store import find_drop_file, read_panel, write_frame, write_panel
from cecl_pipeline.panel.validation import CheckOutcome, PanelLimits, validate_macro, validate_panel
from cecl_pipeline.quarters import shift
from cecl_pipeline.settings import DataLayout


@dataclass
class IngestResult:
    quarter: str | None  # None for the macro table
    source: Path
    frame: pd.DataFrame
    outcomes: list[CheckOutcome]
    path: Path

    @property
    def accepted(self) -> bool:
        return blocking_passed(self.outcomes)


def blocking_passed(outcomes: list[CheckOutcome]) -> bool:
    return all(o.passed for o in outcomes if o.spec.blocking)


def ingest_quarter(layout: DataLayout, quarter: str, limits: PanelLimits = PanelLimits()) -> IngestResult:
    """Raises DropFileError (nothing written) when the drop file cannot be read into the schema."""
    drop_file = find_drop_file(layout, quarter)
    panel = read_panel_file(drop_file)
    previous_path = layout.panel_parquet(shift(quarter, -1))
    previous = read_panel(previous_path) if previous_path.exists() else None
    outcomes = validate_panel(panel, quarter, previous, limits)
    target = layout.panel_parquet(quarter) if blocking_passed(outcomes) else layout.rejected_panel_parquet(quarter)
    return IngestResult(quarter, drop_file, panel, outcomes, write_panel(panel, target))


def ingest_macro(layout: DataLayout) -> IngestResult:
    """raw/macro.csv → validated macro Parquet (or the rejected folder)."""
    macro = read_macro_file(layout.macro_csv)
    outcomes = validate_macro(macro)
    target = layout.macro_parquet if blocking_passed(outcomes) else layout.rejected_dir / layout.macro_parquet.name
    return IngestResult(None, layout.macro_csv, macro, outcomes, write_frame(macro, target))

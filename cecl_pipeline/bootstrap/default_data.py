"""The embedded default: a seeded synthetic panel and macro table, written as drop files on first run."""

from __future__ import annotations

import os

import pandas as pd

from cecl_pipeline.bootstrap.synthetic import DEFAULT_FIRST, DEFAULT_LAST, synthesize_macro, synthesize_panel
from cecl_pipeline.bootstrap.synthetic_portfolio import synthesize_portfolio
from cecl_pipeline.bootstrap.synthetic_scenarios import DEFAULT_WEIGHTS, synthesize_scenarios
from cecl_pipeline.panel.importer import write_csv_atomic, write_drop_file
from cecl_pipeline.panel.scenarios import store_scenario
from cecl_pipeline.panel.store import drop_file_quarters
from cecl_pipeline.settings import DataLayout

DEFAULT_BANKS = 40
DEFAULT_SEED = 0


def synthetic_allowed() -> bool:
    """Only the project's own data folder gets synthetic data unasked; a user's folder needs CECL_SYNTHETIC=1."""
    return not os.environ.get("CECL_DATA_DIR") or os.environ.get("CECL_SYNTHETIC") == "1"


def write_synthetic(layout: DataLayout, n_banks: int = DEFAULT_BANKS, seed: int = DEFAULT_SEED, first: str = DEFAULT_FIRST, last: str = DEFAULT_LAST) -> int:
    """Write the synthetic panel as one drop file per quarter, raw/macro.csv, and for the last quarter its portfolio, a baseline and
    a severely adverse scenario starting the quarter after, and their weights; returns the row count."""
    macro = synthesize_macro(first, last, seed)
    panel = synthesize_panel(n_banks, first, last, seed, macro=macro)
    for _, rows in panel.groupby("quarter", sort=True):
        write_drop_file(rows, layout.raw_nco_dir / f"{rows['quarter'].iloc[0]}.csv")
    write_csv_atomic(macro, layout.macro_csv)
    keys = panel.loc[panel["quarter"] == last, ["entity_id", "segment"]]
    write_csv_atomic(synthesize_portfolio(keys, seed), layout.portfolio_csv(last))
    scenarios = synthesize_scenarios(macro)
    for scenario in scenarios:
        store_scenario(scenario, layout.scenarios_dir)
    weights = pd.DataFrame({"scenario": [s.key for s in scenarios], "weight": [DEFAULT_WEIGHTS[s.name] for s in scenarios]})
    write_csv_atomic(weights, layout.scenario_weights_csv(last))
    return len(panel)


def ensure_default_data(layout: DataLayout) -> str | None:
    """If the drop folder is empty and synthetic data is allowed, write it; returns what was done."""
    if drop_file_quarters(layout) or not synthetic_allowed():
        return None
    rows = write_synthetic(layout)
    return (f"no drop files in {layout.raw_nco_dir}: wrote the synthetic default "
            f"({DEFAULT_BANKS} banks, seed {DEFAULT_SEED}, {rows} rows, {DEFAULT_FIRST}–{DEFAULT_LAST})")

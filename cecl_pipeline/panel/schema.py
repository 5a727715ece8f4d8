"""The long-format NCO panel and the macro table: column names, types and the Arrow schema on disk."""

from __future__ import annotations

import pyarrow as pa

KEY_COLUMNS = ("entity_id", "segment", "quarter")
RATE_COLUMN = "nco_rate"  # annualised percent: 400 × quarterly net charge-offs / loans
REQUIRED_COLUMNS = (*KEY_COLUMNS, RATE_COLUMN)
OPTIONAL_AMOUNT_COLUMNS = ("charge_offs", "recoveries", "net_charge_offs", "loans")
NUMERIC_COLUMNS = (RATE_COLUMN, *OPTIONAL_AMOUNT_COLUMNS)
# Where each row came from, kept in the processed panel so every check can name file and row.
PROVENANCE_COLUMNS = ("source_file", "source_row")

PANEL_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_AMOUNT_COLUMNS, *PROVENANCE_COLUMNS)

PANEL_SCHEMA = pa.schema(
    [pa.field(c, pa.string(), nullable=False) for c in KEY_COLUMNS]
    + [pa.field(c, pa.float64()) for c in NUMERIC_COLUMNS]
    + [pa.field("source_file", pa.string()), pa.field("source_row", pa.int64())]
)

MACRO_QUARTER = "quarter"
# The columns of the Fed's historic domestic scenario table (../shared/data/frb_macro_history.csv).
MACRO_COLUMNS = (
    "real_gdp_growth",
    "nominal_gdp_growth",
    "real_disposable_income_growth",
    "nominal_disposable_income_growth",
    "unemployment_rate",
    "cpi_inflation",
    "treasury_3m",
    "treasury_5y",
    "treasury_10y",
    "bbb_yield",
    "mortgage_rate",
    "prime_rate",
    "dow_jones_index",
    "house_price_index",
    "cre_price_index",
    "vix",
)

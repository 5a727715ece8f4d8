"""Prompt rows built column-wise from 12-quarter windows, for any env (``cecl_pipeline.envs`` holds them).

The pieces an env chooses from: the system prompt, a body that lays out the history
(``history_lines``, or ``enhanced_table`` with changes and macro covariates) and its closing
instruction. Rows are sorted and the Arrow schema is fixed, so identical inputs give
byte-identical Parquet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from cecl_pipeline.panel.schema import MACRO_QUARTER
from cecl_pipeline.panel.text_format import join_lines, rates
from cecl_pipeline.panel.windows import Windows, assert_no_lookahead

SYSTEM_PROMPT = (
    "You are a credit risk analyst at a bank. You forecast next quarter's net charge-off (NCO) rate for a loan segment, "
    "the input to the CECL allowance. Rates are annualized percentages of loans."
)
DEFAULT_MACRO_COLUMNS = ("unemployment_rate", "real_gdp_growth", "cpi_inflation", "treasury_10y", "bbb_yield", "house_price_index", "vix")

# How an env lays out the history: (windows, shared columns, macro table or None, macro columns) → one text per row.
Body = Callable[..., pa.Array]


class PromptSpec(Protocol):
    """What prompt building needs of an env (``cecl_pipeline.envs.registry.Env`` is one)."""

    name: str
    instruction: str  # the closing line: how to answer
    body: Body  # the history as the prompt lays it out


PROMPTS_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("env", pa.string()),
        ("entity_id", pa.string()),
        ("segment", pa.string()),
        ("target_quarter", pa.string()),
        ("history_quarters", pa.list_(pa.string())),
        ("history", pa.list_(pa.float64())),
        ("target", pa.float64()),
        ("system", pa.string()),
        ("user", pa.string()),
        ("prompt", pa.string()),
    ]
)


class PlainTemplate:
    """Used when no model tokenizer is configured: system and user text separated by a blank line."""

    name = "plain"

    def render(self, system: pa.Array, user: pa.Array) -> pa.Array:
        return join_lines([system, user], "\n\n")


def build_prompts(windows: Windows, envs: list[PromptSpec], macro: pd.DataFrame | None = None, template=None,
                  macro_columns=DEFAULT_MACRO_COLUMNS) -> pa.Table:
    """Prompts for every env over one set of windows, sorted by (env, entity_id, segment), in PROMPTS_SCHEMA.

    Windows come sorted by (entity_id, segment), so concatenating the envs in name order keeps the
    file order stable without a sort. The history is formatted once, and each body once, for every env.
    """
    assert_no_lookahead(windows.history_quarters, windows.target_quarter, "the prompt window")
    shared = SharedColumns(windows)
    bodies: dict[Body, pa.Array] = {}
    tables = []
    for env in sorted(envs, key=lambda e: e.name):
        if env.body not in bodies:
            bodies[env.body] = env.body(windows, shared, macro, macro_columns)
        tables.append(_env_table(windows, shared, env, bodies[env.body], template or PlainTemplate()))
    return pa.concat_tables(tables) if tables else PROMPTS_SCHEMA.empty_table()


class SharedColumns:
    """Columns every env of one quarter has in common, built once."""

    def __init__(self, windows: Windows):
        n = len(windows)
        self.entity = pa.array(windows.keys["entity_id"].to_numpy(dtype=object), pa.string())
        self.segment = pa.array(windows.keys["segment"].to_numpy(dtype=object), pa.string())
        self.header = join_lines([pa.scalar("Segment: "), self.segment, pa.scalar("\nEntity: "), self.entity], "")
        self.history_text = [rates(windows.history[:, k]) for k in range(windows.history.shape[1])]
        self.system = pa.array(np.full(n, SYSTEM_PROMPT, dtype=object), pa.string())
        lookback = len(windows.history_quarters)
        offsets = pa.array(np.arange(0, (n + 1) * lookback, lookback, dtype=np.int32))
        self.history = pa.ListArray.from_arrays(offsets, pa.array(windows.history.ravel()))
        self.history_quarters = _repeat_list(pa.array(windows.history_quarters, pa.string()), n)
        self.target_quarter = pa.array(np.full(n, windows.target_quarter, dtype=object), pa.string())
        self.target = pa.array(windows.target)


def _env_table(windows: Windows, shared: SharedColumns, env: PromptSpec, body: pa.Array, template) -> pa.Table:
    question = f"What will the annualized net charge-off rate be in {windows.target_quarter}? {env.instruction}"
    user = join_lines([shared.header, body, pa.scalar(question)], "\n")
    columns = {
        "prompt_id": join_lines([pa.scalar(env.name), shared.entity, shared.segment, pa.scalar(windows.target_quarter)], ":"),
        "env": pa.array(np.full(len(windows), env.name, dtype=object), pa.string()),
        "entity_id": shared.entity,
        "segment": shared.segment,
        "target_quarter": shared.target_quarter,
        "history_quarters": shared.history_quarters,
        "history": shared.history,
        "target": shared.target,
        "system": shared.system,
        "user": user,
        "prompt": template.render(shared.system, user),
    }
    return pa.table(columns, schema=PROMPTS_SCHEMA)


def _repeat_list(values: pa.Array, n: int) -> pa.Array:
    k = len(values)
    indices = pa.array(np.tile(np.arange(k), n))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32)), values.take(indices))


def history_lines(windows: Windows, shared: SharedColumns, macro: pd.DataFrame | None = None, macro_columns=DEFAULT_MACRO_COLUMNS) -> pa.Array:
    """The rate by quarter, one line each (no macro data)."""
    lines = [pa.scalar("Annualized net charge-off rate (%) by quarter, oldest first:")]
    for k, quarter in enumerate(windows.history_quarters):
        lines.append(join_lines([pa.scalar(f"{quarter}: "), shared.history_text[k]], ""))
    return join_lines(lines)


def enhanced_table(windows: Windows, shared: SharedColumns, macro: pd.DataFrame | None = None, macro_columns=DEFAULT_MACRO_COLUMNS) -> pa.Array:
    """A pipe table: quarter | nco_rate | qoq | yoy | mean_4q | macro covariates, one line per history quarter; then the
    target quarter's macro line (see ``target_macro_line``)."""
    h = windows.history
    macro_rows = _macro_rows(windows, macro, macro_columns)
    columns = ["quarter", "nco_rate", "qoq_change", "yoy_change", "mean_4q", *macro_columns]
    lines = [pa.scalar("History, oldest first (nco_rate in %, changes in percentage points):"), pa.scalar(" | ".join(columns))]
    for k, quarter in enumerate(windows.history_quarters):
        qoq = h[:, k] - h[:, k - 1] if k >= 1 else np.full(len(h), np.nan)
        yoy = h[:, k] - h[:, k - 4] if k >= 4 else np.full(len(h), np.nan)
        mean4 = h[:, k - 3 : k + 1].mean(axis=1) if k >= 3 else np.full(len(h), np.nan)
        macro_text = " | ".join(_macro_value(macro_rows, quarter, c) for c in macro_columns)
        lines.append(
            join_lines(
                [pa.scalar(quarter), shared.history_text[k], rates(qoq, signed=True), rates(yoy, signed=True), rates(mean4), pa.scalar(macro_text)],
                " | ",
            )
        )
    lines.append(pa.scalar(target_macro_line(windows.target_quarter, macro, macro_columns)))
    return join_lines(lines)


def target_macro_line(target: str, macro: pd.DataFrame | None, macro_columns) -> str:
    """The macro covariates of the target quarter itself, the line a scenario conditions on.

    In training and the walk-forward it holds the realised values (the macro table reaches the
    target); in a forward forecast, the scenario's path for that quarter. No charge-off value is in it.
    """
    row = _macro_rows_at(macro, macro_columns, [target])
    values = ", ".join(f"{c} {_macro_value(row, target, c)}" for c in macro_columns)
    return f"Macro conditions in {target}: {values}"


def _macro_rows(windows: Windows, macro: pd.DataFrame | None, macro_columns) -> pd.DataFrame:
    used = _macro_rows_at(macro, macro_columns, windows.history_quarters)
    assert_no_lookahead(used.index, windows.target_quarter, "the macro covariates")
    return used


def _macro_rows_at(macro: pd.DataFrame | None, macro_columns, quarters) -> pd.DataFrame:
    if macro is None:
        return pd.DataFrame(columns=[*macro_columns]).rename_axis(MACRO_QUARTER)
    return macro[macro[MACRO_QUARTER].isin(quarters)].set_index(MACRO_QUARTER)


def _macro_value(rows: pd.DataFrame, quarter: str, column: str) -> str:
    value = rows[column].get(quarter, np.nan) if column in rows else np.nan
    return "n/a" if pd.isna(value) else f"{value:.2f}"

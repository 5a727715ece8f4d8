"""The Fed's supervisory scenario tables, read, checked and stored by name.

A table is ``Scenario Name,Date,<the 16 domestic variables>``, one row per quarter, dates written
``2026 Q1``, as the Fed publishes it (../shared/data/scenarios/). Its variables are the macro
table's, in the same order, under their published names; they are stored under the macro table's
names so that an env reads a scenario quarter exactly where it reads a realised one.

Refused, with file, row and column: an unknown or missing column, a second scenario name, a date
that is not a quarter, a blank or non-numeric value, a duplicate quarter and a gap. Whether a
scenario starts at the right quarter depends on the forecast origin, so ``check_starts_after``
checks that where a forecast uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cecl_pipeline.files import atomic_path
from cecl_pipeline.panel.errors import DropFileError, Offence
from cecl_pipeline.panel.readers import collect_offences, parse_numbers, read_raw_table, require_columns, required_text
from cecl_pipeline.panel.schema import MACRO_COLUMNS, MACRO_QUARTER
from cecl_pipeline.quarters import from_ordinal, normalise_quarter_column, shift, to_ordinal

NAME, DATE = "Scenario Name", "Date"
PUBLISHED_COLUMNS = (
    "Real GDP growth", "Nominal GDP growth", "Real disposable income growth", "Nominal disposable income growth",
    "Unemployment rate", "CPI inflation rate", "3-month Treasury rate", "5-year Treasury yield", "10-year Treasury yield",
    "BBB corporate yield", "Mortgage rate", "Prime rate", "Dow Jones Total Stock Market Index (Level)",
    "House Price Index (Level)", "Commercial Real Estate Price Index (Level)", "Market Volatility Index (Level)",
)
TO_MACRO = dict(zip(PUBLISHED_COLUMNS, MACRO_COLUMNS, strict=True))


@dataclass(frozen=True)
class Scenario:
    name: str  # as published, e.g. "Supervisory Severely Adverse"
    path: pd.DataFrame  # quarter, the 16 macro columns, source_file, source_row; consecutive quarters

    @property
    def key(self) -> str:
        """The name as a file and config key: "Supervisory Severely Adverse" → "supervisory_severely_adverse"."""
        return scenario_key(self.name)

    @property
    def quarters(self) -> list[str]:
        return self.path[MACRO_QUARTER].tolist()


def scenario_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def read_scenario_file(path: Path) -> Scenario:
    """The scenario in ``path``; a DropFileError names every offence and nothing is kept."""
    path = Path(path)
    frame = read_raw_table(path)
    unknown = [c for c in frame.columns if c not in (NAME, DATE, *PUBLISHED_COLUMNS, "__row__")]
    if unknown:
        offences = [Offence(1, c, None, "unknown column: a Fed domestic scenario table has Scenario Name, Date and "
                                        "the 16 domestic variables") for c in unknown]
        raise DropFileError(path, "not a Fed domestic scenario table", offences)
    require_columns(frame, path, (NAME, DATE, *PUBLISHED_COLUMNS))
    offences: list[Offence] = []
    counts: list[int] = []
    names = required_text(frame, NAME, offences, counts)
    first_name = names.dropna().iloc[0] if names.notna().any() else ""
    collect_offences(offences, counts, frame, names.notna() & (names != "") & (names != first_name), NAME,
                     f"a second scenario in one file (the first row names {first_name!r}); import each scenario as its own file")
    quarters = normalise_quarter_column(frame[DATE].astype("string").str.replace(r"^\s*(\d{4})\s+Q([1-4])\s*$", r"\1Q\2", regex=True))
    collect_offences(offences, counts, frame, quarters.isna(), DATE, "not a quarter (the Fed writes 2026 Q1)")
    values = parse_numbers(frame, PUBLISHED_COLUMNS, offences, counts)
    for column in PUBLISHED_COLUMNS:
        collect_offences(offences, counts, frame, values[column].isna(), column, "missing value: a scenario path must be complete")
    if not quarters.isna().any():
        _check_sequence(frame, quarters, offences, counts)
    if offences:
        offences.sort(key=lambda o: o.row or 0)
        raise DropFileError(path, "the scenario cannot be used; nothing was stored", offences, total=sum(counts))
    table = pd.DataFrame({MACRO_QUARTER: quarters, **{TO_MACRO[c]: values[c] for c in PUBLISHED_COLUMNS},
                          "source_file": path.name, "source_row": frame["__row__"].astype("int64")})
    return Scenario(str(first_name), table.reset_index(drop=True))


def _check_sequence(frame: pd.DataFrame, quarters: pd.Series, offences: list[Offence], counts: list[int]) -> None:
    """Each quarter once, each the quarter after the row above it."""
    ordinal = quarters.map(to_ordinal)
    rows = frame["__row__"]
    first_row = rows.groupby(ordinal).transform("first")
    duplicate = ordinal.duplicated(keep="first")
    for i in duplicate[duplicate].index[:20]:
        offences.append(Offence(int(rows[i]), DATE, frame.at[i, DATE], f"duplicate quarter: {quarters[i]} is also on row {int(first_row[i])}"))
    step = ordinal.diff()
    broken = ~duplicate & step.notna() & (step != 1)
    for i in broken[broken].index[:20]:
        expected = from_ordinal(int(ordinal[i - 1]) + 1)
        offences.append(Offence(int(rows[i]), DATE, frame.at[i, DATE], f"a gap or a step back: expected {expected} after the row above"))
    counts.extend(n for n in (int(duplicate.sum()), int(broken.sum())) if n)


def check_starts_after(scenario: Scenario, origin: str) -> None:
    """A forecast from ``origin`` conditions Q+1, Q+2, … on the scenario: it must begin at Q+1."""
    wanted = shift(origin, 1)
    if scenario.quarters[0] != wanted:
        row = int(scenario.path["source_row"].iloc[0])
        file = scenario.path["source_file"].iloc[0]
        raise ValueError(f"{file}: row {row}, column {DATE!r}: the scenario {scenario.name!r} starts {scenario.quarters[0]}, "
                         f"but a forecast from {origin} needs it to start {wanted}")


def store_scenario(scenario: Scenario, directory: Path) -> Path:
    """Write the scenario as ``<directory>/<key>.csv`` (macro-table column names), all or nothing; returns the path."""
    path = Path(directory) / f"{scenario.key}.csv"
    with atomic_path(path) as tmp:
        scenario.path.assign(scenario=scenario.name).to_csv(tmp, index=False)
    return path


def read_stored_scenarios(directory: Path) -> dict[str, Scenario]:
    """Every scenario ``store_scenario`` wrote under ``directory``, by key (empty when there is none)."""
    stored = {}
    for path in sorted(Path(directory).glob("*.csv")):
        table = pd.read_csv(path, dtype={MACRO_QUARTER: "string", "source_file": "string", "scenario": "string"})
        stored[path.stem] = Scenario(str(table["scenario"].iloc[0]), table.drop(columns=["scenario"]))
    return stored


def scenarios_from(stored: dict[str, Scenario], names: list[str], origin: str) -> dict[str, pd.DataFrame]:
    """The named stored scenarios (all that start at Q+1 when none is named), key → path; a named one must start at Q+1."""
    unknown = [n for n in names if n not in stored]
    if unknown:
        raise ValueError(f"no stored scenario {', '.join(map(repr, unknown))}: the stored ones are {', '.join(stored) or 'none'} "
                         "(cecl import-scenario FILE stores one)")
    if names:
        for name in names:
            check_starts_after(stored[name], origin)
        return {name: stored[name].path for name in names}
    return {key: s.path for key, s in stored.items() if s.quarters[0] == shift(origin, 1)}

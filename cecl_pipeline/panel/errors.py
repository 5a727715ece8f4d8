"""Errors about input files that say which file, row and column is wrong, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_LISTED = 20


@dataclass(frozen=True)
class Offence:
    """One bad cell: ``row`` is the CSV line number (header = 1) or the 1-based Parquet row."""

    row: int | None
    column: str | None
    value: object
    reason: str

    def describe(self) -> str:
        where = ", ".join(p for p in (f"row {self.row}" if self.row else "", f"column {self.column!r}" if self.column else "") if p)
        value = "" if self.value is None else f" (value {self.value!r})"
        return f"{where}: {self.reason}{value}" if where else f"{self.reason}{value}"


@dataclass
class DropFileError(Exception):
    """An input file that cannot be read into the panel schema. Nothing is written when it is raised."""

    path: Path
    problem: str
    offences: list[Offence] = field(default_factory=list)
    total: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        lines = [f"{self.path}: {self.problem}"]
        shown = self.offences[:MAX_LISTED]
        lines += [f"  - {o.describe()}" for o in shown]
        total = self.total if self.total is not None else len(self.offences)
        if total > len(shown):
            lines.append(f"  … and {total - len(shown)} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message

"""Problems found in a dataset: each says what is wrong, where, and how to fix it."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem with the data.

    Args:
        code: a stable short name tests and the UI can switch on (``"empty_file"``, ``"duplicates"``...).
        message: what is wrong, in plain words, naming the rows or files concerned.
        fix: what the user can do about it.
        rows: the row numbers as the user sees them in the file (or file names for images), at most a few hundred.
    """

    code: str
    message: str
    fix: str
    rows: tuple = ()

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "fix": self.fix, "rows": list(self.rows)}

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}"


@dataclass
class DataReport:
    """Blocking errors (no training possible) and warnings (training possible, results may suffer)."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str, fix: str, rows=()) -> None:
        self.errors.append(Problem(code, message, fix, tuple(rows)[:MAX_LISTED]))

    def warn(self, code: str, message: str, fix: str, rows=()) -> None:
        self.warnings.append(Problem(code, message, fix, tuple(rows)[:MAX_LISTED]))

    def codes(self) -> list[str]:
        return [p.code for p in self.errors + self.warnings]

    def to_dict(self) -> dict:
        return {"errors": [p.to_dict() for p in self.errors], "warnings": [p.to_dict() for p in self.warnings]}


class DataError(ValueError):
    """Raised by ``PreparedData.require_ok()``; its message lists every blocking problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"The data cannot be used yet ({len(self.problems)} problem(s)):\n{lines}")


MAX_LISTED = 200  # rows kept on a Problem; the message still gives the full count


def describe_rows(rows, unit: str = "row", shown: int = 8) -> str:
    """'rows 2, 5 and 9' or 'rows 2, 5, 9, ... (40 in all)' for messages."""
    rows = list(rows)
    if not rows:
        return f"no {unit}s"
    label = unit if len(rows) == 1 else f"{unit}s"
    if len(rows) <= shown:
        if len(rows) == 1:
            return f"{label} {rows[0]}"
        return f"{label} {', '.join(map(str, rows[:-1]))} and {rows[-1]}"
    return f"{label} {', '.join(map(str, rows[:shown]))}, ... ({len(rows)} in all)"


def plural(rows, one: str, many: str) -> str:
    """The verb form that agrees with ``describe_rows(rows)``."""
    return one if len(list(rows)) == 1 else many

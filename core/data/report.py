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
        options: for a problem that asks the user to choose (which column is the label, which sheet), the
            choices, most likely first; the page can offer them.
    """

    code: str
    message: str
    fix: str
    rows: tuple = ()
    options: tuple = ()

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message, "fix": self.fix, "rows": list(self.rows)}
        if self.options:
            out["options"] = list(self.options)
        return out

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}"


@dataclass
class DataReport:
    """Blocking errors (no training possible) and warnings (training possible, results may suffer), plus a
    record of what reading changed: rows dropped per reason and class names merged."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    merged: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)

    def count_dropped(self, code: str, count: int) -> None:
        """Note that ``count`` rows (or files) were left out for the reason ``code``."""
        if count:
            self.dropped[code] = self.dropped.get(code, 0) + int(count)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str, fix: str, rows=(), options=()) -> None:
        self.errors.append(Problem(code, message, fix, tuple(rows)[:MAX_LISTED], tuple(options)))

    def warn(self, code: str, message: str, fix: str, rows=(), options=()) -> None:
        self.warnings.append(Problem(code, message, fix, tuple(rows)[:MAX_LISTED], tuple(options)))

    def left_out(self, name: str) -> list[str]:
        """Why rows of the file ``name`` (a scored file, as ``studio eval --data`` reads it) were not scored, in
        the checks' own words: its duplicates, rows also in the training data, unknown classes, empty or
        unreadable values."""
        return [w.message for w in self.warnings if name in w.message and w.code.startswith(LEFT_OUT_CODES)]

    def cautions(self) -> list[str]:
        """Warnings that the scored rows make the score read higher than on new data (near copies of training
        rows, groups the training rows share), in the checks' own words: a report scored on them repeats them."""
        return [w.message for w in self.warnings if w.code in CAUTION_CODES]

    def codes(self) -> list[str]:
        return [p.code for p in self.errors + self.warnings]

    def to_dict(self) -> dict:
        return {"errors": [p.to_dict() for p in self.errors], "warnings": [p.to_dict() for p in self.warnings]}

    def lines(self) -> list[str]:
        """Every error, then every warning, one line each with its fix: what a console or log prints.

        Warnings are always listed beside the errors because they often explain them (a repeated header row
        or a title line above the header ends in "a class has too few examples").
        """
        return report_lines(self.errors, self.warnings)

    def __str__(self) -> str:
        return "\n".join(self.lines()) or "No problems found."


# warnings whose rows reading drops (the rest, class imbalance and the like, keep every row)
LEFT_OUT_CODES = ("duplicate", "leak", "unknown_validation", "empty_cells", "missing_values", "not_a_number")
# warnings that the validation rows are easier than new data (core/data/checks.near_copies, core/data/groups)
CAUTION_CODES = ("near_copies", "groups_in_training")


def report_lines(errors, warnings) -> list[str]:
    """Plain lines for blocking problems and warnings, the warnings introduced as possible causes.

    Args:
        errors: the blocking ``Problem`` objects.
        warnings: the other ``Problem`` objects.
    """
    lines = [f"- Error: {p}" for p in errors]
    if warnings:
        if errors:
            lines.append(f"Warnings ({len(warnings)}), which may explain the error(s) above:")
        lines += [f"- Warning: {p}" for p in warnings]
    return lines


class DataError(ValueError):
    """Raised by ``PreparedData.require_ok()``; its message lists every blocking problem and every warning.

    Args:
        problems: the blocking problems.
        warnings: the warnings of the same load; listed after the errors because they often explain them.
    """

    def __init__(self, problems: list[Problem], warnings: list[Problem] = ()):
        self.problems = list(problems)
        self.warnings = list(warnings)
        lines = "\n".join(report_lines(self.problems, self.warnings))
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


def quoted(names, shown: int = 8) -> str:
    """``'a', 'b' and 'c'`` (or ``'a', 'b', ... (12 in all)``) for messages naming values or columns."""
    names = [repr(str(n)) for n in names]
    if len(names) > shown:
        return f"{', '.join(names[:shown])}, ... ({len(names)} in all)"
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"

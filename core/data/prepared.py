"""What ``load_data`` hands back: datasets in the normalised schema, the report and a summary for the UI."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .report import DataError, DataReport


@dataclass
class PreparedData:
    """Data ready for training, or the reasons it is not.

    ``train``/``validation`` are ``datasets.Dataset`` objects (None when the report has errors):
    chat -> ``messages``; text-classification -> ``text``, ``label``; image-classification -> ``image``
    (absolute path), ``label``. ``labels[i]`` is the class name of label id ``i``.

    ``test`` is the held-out test split when the data brought one (a ``test/`` folder), else None.
    ``candidates`` maps a role (``"label"``, ``"text"``) or ``"sheet"`` to the columns (or sheets) that could
    fill it, most likely first; when the studio would not choose, an ``ambiguous_<role>`` (or
    ``several_sheets``) error says so and the page can offer these as choices.
    """

    task: str | None
    columns: dict[str, str]
    detection: list[str]
    train: object | None
    validation: object | None
    labels: list[str] | None
    report: DataReport
    summary: dict = field(default_factory=dict)
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    test: object | None = None

    @property
    def ok(self) -> bool:
        return self.report.ok

    def require_ok(self) -> "PreparedData":
        """Raise ``DataError`` listing every blocking problem and every warning; return self when there are none."""
        if not self.report.ok:
            raise DataError(self.report.errors, self.report.warnings)
        return self

    def understood(self, problems: bool = True) -> list[str]:
        """What was understood, as plain lines to print before training (see ``core.data.understood_lines``)."""
        from .overview import understood_lines
        return understood_lines(self, problems)


def natural_key(name: str) -> tuple:
    """Sort key that orders "2" before "10" and ignores case."""
    parts = re.split(r"(\d+)", str(name))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p != "")


def natural_sorted(names) -> list[str]:
    return sorted(set(names), key=lambda n: (natural_key(n), n))

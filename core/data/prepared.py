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

    @property
    def ok(self) -> bool:
        return self.report.ok

    def require_ok(self) -> "PreparedData":
        """Raise ``DataError`` listing every blocking problem; return self when there are none."""
        if not self.report.ok:
            raise DataError(self.report.errors)
        return self


def natural_key(name: str) -> tuple:
    """Sort key that orders "2" before "10" and ignores case."""
    parts = re.split(r"(\d+)", str(name))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p != "")


def natural_sorted(names) -> list[str]:
    return sorted(set(names), key=lambda n: (natural_key(n), n))

"""Turning cell values of any type into the strings the models see, and spotting missing-value markers."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

# What spreadsheets, databases and pandas write for "no value". A bare "NA" is left out on purpose: it is
# also a real value (North America, Namibia, "not applicable" as a class).
MISSING_MARKERS = frozenset({
    "#N/A", "#N/A N/A", "#NA", "N/A", "n/a", "N/a", "NULL", "null", "Null", "nan", "NaN", "NAN", "None", "none",
    "NONE", "-", "--", "---", "?", "<NA>", "<null>", "(null)", "(blank)", "(empty)", "undefined", "#VALUE!",
    "#REF!", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!", "NaT",
})


def value_text(value) -> str:
    """One cell as text: missing -> '', whole floats without '.0', lists and dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "tolist"):  # numpy scalars and arrays from Parquet
        return value_text(value.tolist())
    return str(value)


def as_text(series: pd.Series) -> pd.Series:
    """A column as strings, vectorised when it already holds strings."""
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        return series.fillna("").astype(str)
    return series.map(value_text).astype(str)


def missing_mask(values: pd.Series) -> np.ndarray:
    """True where a stripped text cell is one of the ``MISSING_MARKERS`` (an empty cell is not counted here).

    Args:
        values: stripped strings.
    """
    return values.isin(MISSING_MARKERS).to_numpy(dtype=bool)


def blank_missing(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Stripped strings with missing-value markers turned into empty strings, and the markers found.

    Args:
        values: stripped strings.
    """
    mask = missing_mask(values)
    if not mask.any():
        return values, []
    found = sorted(set(values[mask].tolist()))
    return values.mask(mask, ""), found

"""Turning cell values of any type into the strings the models see."""
from __future__ import annotations

import json
import math

import pandas as pd


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

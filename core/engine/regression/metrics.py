"""Regression scores: mean absolute error, root mean square error, R², the points of a predicted-against-true
plot and the worst errors."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

MAX_POINTS = 2000  # points for the page's scatter plot (a validation split is capped near this size anyway)


def scores(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """``mae``, ``rmse`` and ``r2`` (1 - squared error / the spread of the true values; 0 for predicting their
    mean, negative for worse).

    Args:
        y_true: the true values.
        y_pred: the predictions.
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    error = y_pred - y_true
    spread = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float((error ** 2).sum()) / spread if spread > 0 else 0.0
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())), "r2": r2}


def error_rows(y_true: Sequence[float], y_pred: Sequence[float]) -> np.ndarray:
    """Minus the absolute error of every row (higher is better, as a classifier's 1 right / 0 wrong), for the
    paired comparison of two models on the same rows."""
    return -np.abs(np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64))


def points(y_true: Sequence[float], y_pred: Sequence[float], limit: int = MAX_POINTS) -> dict[str, list[float]]:
    """Predicted against true, for a scatter plot: ``{"true": [...], "predicted": [...]}`` (evenly thinned to
    ``limit`` points)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    keep = np.linspace(0, len(y_true) - 1, min(limit, len(y_true))).round().astype(int) if len(y_true) else []
    return {"true": [_round(v) for v in y_true[keep]], "predicted": [_round(v) for v in y_pred[keep]]}


def worst(items: Sequence, y_true: Sequence[float], y_pred: Sequence[float], limit: int = 30) -> list[dict[str, Any]]:
    """The examples predicted worst, largest absolute error first.

    Args:
        items: the text, or the image path, of every example.
        y_true: the true values.
        y_pred: the predictions.
        limit: how many to keep.
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    order = np.argsort(-np.abs(y_pred - y_true), kind="stable")[:limit]
    return [{"item": str(items[i]), "true": _round(y_true[i]), "predicted": _round(y_pred[i]),
             "error": _round(y_pred[i] - y_true[i])} for i in order]


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")

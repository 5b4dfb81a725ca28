"""Classifier scores: accuracy, macro-F1, per-class figures, the confusion matrix and the worst mistakes."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def headline(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (every class counts the same, so a rare class is not drowned out).

    Args:
        y_true: the true label ids.
        y_pred: the predicted label ids.
        n_classes: how many classes there are (classes absent from both still count as zero F1 only
            when present in ``y_true``; sklearn's ``labels`` argument keeps the average honest).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = sorted(set(y_true.tolist()))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }


def per_class(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support for every class, in label order."""
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return [{"label": labels[i], "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
             "support": int(s[i])} for i in ids]


def confusion(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """The confusion matrix: ``matrix[i][j]`` counts examples of class ``labels[i]`` predicted as ``labels[j]``."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    return {"labels": list(labels), "matrix": matrix.astype(int).tolist()}


def mistakes(items: Sequence[str], y_true: Sequence[int], probs: np.ndarray, labels: list[str],
             limit: int = 30) -> list[dict[str, Any]]:
    """The misclassified examples, most confidently wrong first.

    Args:
        items: the text, or the image path, of every example.
        y_true: true label ids.
        probs: (N, C) predicted probabilities.
        labels: class names.
        limit: how many to keep.
    """
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != np.asarray(y_true))
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:limit]
    return [{"item": str(items[i]), "true": labels[int(y_true[i])], "predicted": labels[int(pred[i])],
             "confidence": float(probs[i, pred[i]])} for i in order]


def log_loss(probs: np.ndarray, y_true: Sequence[int]) -> float:
    """Mean cross-entropy of the true class (the validation loss the training curve shows)."""
    picked = probs[np.arange(len(probs)), np.asarray(y_true)]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())

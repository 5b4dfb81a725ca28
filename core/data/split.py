"""Seeded train/validation split, stratified by class for classifiers."""
from __future__ import annotations

import numpy as np

MAX_VALIDATION_ROWS = 2000


def default_fraction(n: int) -> float:
    """20 % of small datasets, 10 % above 2,000 rows, never more than ~2,000 validation rows.

    Args:
        n: the number of usable rows.
    """
    fraction = 0.2 if n <= 2000 else 0.1
    return min(fraction, MAX_VALIDATION_ROWS / max(n, 1))


def split_indices(n: int, fraction: float, seed: int,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and validation rows.

    With labels, every class with at least two rows gets at least one validation row and keeps at least one
    training row, in proportion to its size.

    Args:
        n: the number of rows.
        fraction: the share for validation.
        seed: fixes the shuffle.
        labels: class ids per row, to stratify.
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        take = min(max(1, round(n * fraction)), n - 1) if n > 1 else 0
        return np.sort(order[take:]), np.sort(order[:take])
    val = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        if len(members) < 2:
            continue
        take = min(max(1, round(len(members) * fraction)), len(members) - 1)
        val.append(members[:take])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=int)
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx

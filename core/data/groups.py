"""Rows that belong together: one customer's tickets, one patient's scans, one source's documents.

A table may name a ``group`` column; an image folder whose class folders each hold subfolders
(``cats/tom/1.jpg``, ``cats/tom/2.jpg``) has its groups in them (the role then reads ``subfolder``). Rows of one
group are often alike, so a model that saw one of them answers the others from memory: were they on both sides
of the split (or of a cross-validation fold), the validation figure would say more than the model knows about
new groups. With groups every split the studio makes keeps each group on one side: the validation split here,
the search's folds in ``core.engine.classify.fitting.folds_for`` and
``core.engine.regression.objective.Regression.folds``.

Rows carry the group as ``_group`` (a string; a row with the column empty is a group of its own) and the
datasets as a ``group`` column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .report import DataReport

ROLE = "group"
SUBFOLDER = "subfolder"  # the group of an image folder's nested layout: the subfolder of the class folder
HELP = "rows that belong together (a customer, a source), kept on one side of the split (optional)"
SHARED_WARN = 0.05  # a validation file whose rows share a training group this often is warned about
SUGGEST_KINDS = ("category", "id", "short_text", "email", "number")  # what a customer, patient or source looks like
SUGGEST_MIN_VALUES = 10  # fewer values are more likely a channel or a priority than who or where a row came from
SUGGEST_ROWS_PER_VALUE = 1.5  # on average; a column of nearly unique values groups nothing


def attach(rows: pd.DataFrame, frame: pd.DataFrame, numbers, column: str | None) -> pd.DataFrame:
    """``rows`` with ``_group`` from ``frame[column]``, matched by the shown row number (``_row``)."""
    if column is None or rows.empty or "_row" not in rows:
        return rows
    values = frame[column].astype("string").str.strip()
    by_row = dict(zip(numbers, values))
    own = rows["_row"].map(lambda r: f"\x00row {r}")  # an empty cell: the row is a group of its own
    found = rows["_row"].map(by_row)
    found = found.where(found.notna() & (found.astype("string") != ""), own)
    return rows.assign(_group=found.astype(str).to_numpy())


def suggest(profiles: dict, used: set, rows: int):
    """The column most likely to say which rows belong together, among those no role uses, or None.

    Never chosen by itself (a column of repeated values may be a class, a channel or a date): it is offered on the
    Data step, first in the group list, with what it would change.
    """
    fits = [p for p in profiles.values() if p.column not in used and p.kind in SUGGEST_KINDS
            and p.distinct >= SUGGEST_MIN_VALUES and p.filled >= SUGGEST_ROWS_PER_VALUE * p.distinct
            and p.filled >= 0.9 * rows]
    return max(fits, key=lambda p: (bool(p.metadata), p.filled / p.distinct), default=None)


def offer(found, profiles: dict, rows: int) -> None:
    """Offer the likeliest group column (``suggest``) on a ``Detection`` that has none: first in the group list's
    candidates, and a line saying what choosing it would change."""
    if ROLE in found.columns:
        return
    offered = suggest(profiles, set(found.columns.values()), rows)
    if offered is None:
        return
    found.candidates[ROLE] = [offered.column]
    found.reasons.append(f"'{offered.column}' repeats its values ({offered.distinct} values over {offered.filled} "
                         "rows): if the rows that share one are alike (one customer's tickets, one source's items), "
                         "choose it as the group, so that no group is on both sides of the split and the validation "
                         "score says how the model does on new ones.")


def refuse_shared_role(columns: dict[str, str], column: str, report: DataReport, name: str) -> bool:
    """True, with a problem in the report, when the group column is also another role's (the label, the text, the
    target): a column cannot both say what to predict and which rows belong together."""
    other = next((role for role, col in columns.items() if col == column and role != ROLE), None)
    if other is None:
        return False
    report.error(f"group_is_{other}", f"{name}: '{column}' cannot be both the {other} and the group.",
                 "Choose another column as the group (the rows that belong together), or set it to '(not used)'.")
    return True


def each(column: str | None) -> str:
    """How the groups are named in a sentence: "each 'customer'", or "each class subfolder" for image folders."""
    return "each class subfolder" if column in (None, SUBFOLDER) else f"each '{column}'"


def has_groups(rows: pd.DataFrame | None) -> bool:
    return rows is not None and "_group" in rows


def split_indices(groups: np.ndarray, fraction: float, seed: int,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and validation rows with every group on one side.

    About ``fraction`` of the rows go to validation, whole groups at a time; with labels the groups are chosen
    so that each side keeps the classes' proportions as well as whole groups allow (``StratifiedGroupKFold``).

    Args:
        groups: the group of each row.
        fraction: the share for validation.
        seed: fixes the choice.
        labels: class ids (or value bins) per row, to stratify.
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return np.arange(len(groups)), np.array([], dtype=int)
    k = int(min(max(2, round(1 / max(fraction, 1e-9))), n_groups))
    if labels is not None and len(np.unique(labels)) > 1:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        _, val = next(splitter.split(np.zeros(len(groups)), labels, groups))
    else:
        splitter = GroupShuffleSplit(n_splits=1, test_size=1 / k, random_state=seed)
        _, val = next(splitter.split(np.zeros(len(groups)), groups=groups))
    mask = np.ones(len(groups), dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), np.sort(val)


def folds(groups: np.ndarray, k: int, seed: int, labels: np.ndarray | None = None) -> list[tuple[np.ndarray,
                                                                                                 np.ndarray]]:
    """k cross-validation folds with every group in one fold (fewer folds when there are fewer groups)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups = np.asarray(groups)
    k = min(k, len(np.unique(groups)))
    if k < 2:
        raise ValueError("the training rows are all one group: cross-validation needs rows of at least two "
                         "groups; choose another group column or none.")
    if labels is not None and len(np.unique(labels)) > 1:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(len(groups)), labels, groups)]
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(len(groups)), groups=groups)]


def mean_se(values, groups=None) -> float:
    """The standard error of the mean of per-row values (1 right / 0 wrong, an error...), inf below two rows.

    With ``groups`` the rows of one group count together (the cluster-robust standard error): thirteen icons of
    one family, all right or all wrong, move the mean about as much as one icon does, not thirteen independent
    ones, so the error reflects the number of groups as much as the number of rows. Without groups it is the
    usual ``std / sqrt(n)``.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        return float("inf")
    if groups is None:
        return float(values.std(ddof=1) / np.sqrt(n))
    sums = pd.Series(values - values.mean()).groupby(np.asarray(groups)).sum().to_numpy()
    if len(sums) < 2:
        return float("inf")
    return float(np.sqrt(len(sums) / (len(sums) - 1) * np.sum(sums ** 2)) / n)


def check(train: pd.DataFrame, column: str, report: DataReport, unit: str, name: str) -> bool:
    """Whether the group column can keep groups apart; a problem in the report when it cannot."""
    counts = train["_group"].value_counts()
    if len(counts) < 2:
        report.error("one_group", f"{name}: every {unit} has the same '{column}', so the data cannot be split "
                     "by it.", f"Choose a column whose value tells which {unit}s belong together (a customer, "
                     "a patient, a source), or set the group to '(not used)'.")
        return False
    if counts.iloc[0] > 0.5 * len(train):
        report.warn("big_group", f"{name}: one '{column}' value ({_shown(counts.index[0])}) holds "
                    f"{int(counts.iloc[0])} of {len(train)} {unit}s; it lands on one side of the split whole, so "
                    "the validation share may be far from the one asked for.",
                    "Check the group column; give a validation file to choose the validation rows yourself.")
    return True


def describe(train: pd.DataFrame, validation: pd.DataFrame, column: str, unit: str) -> str:
    """One line for the Data step: how many groups went to each side."""
    kind = "subfolders" if column == SUBFOLDER else "groups"
    return (f"{each(column).capitalize()} stays on one side of the split: {train['_group'].nunique()} {kind} train "
            f"({len(train)} {unit}s), {validation['_group'].nunique()} validate ({len(validation)} {unit}s); the "
            "search's cross-validation folds keep them apart too.")


def shared_with_training(train: pd.DataFrame, validation: pd.DataFrame, column: str, report: DataReport,
                         unit: str, source: str) -> None:
    """A validation file whose rows belong to training groups measures known groups, not new ones: say so."""
    if not has_groups(validation) or validation.empty:
        return
    shared = validation["_group"].isin(set(train["_group"]))
    if shared.mean() < SHARED_WARN:
        return
    named = _shown(validation["_group"][shared].iloc[0])
    report.warn("groups_in_training", f"{int(shared.sum())} of the {len(validation)} validation {unit}s in "
                f"{source} belong to a '{column}' that the training {unit}s also have (such as {named}); on "
                "them the score says how well the model knows those groups, not how it does on new ones.",
                "To measure new groups, give a validation file without the training data's groups.",
                rows=validation["_row"][shared].tolist()[:50])


def _shown(group: str) -> str:
    return "an empty cell" if str(group).startswith("\x00row") else repr(str(group))

"""Vectorised checks on normalised rows: empty cells, duplicates, leakage, classes and their balance.

Rows are a DataFrame with ``_row`` (the number or file name the user sees), ``_key`` (the example's
content as one string, hashed for duplicates and leakage) and, for classifiers, ``label_name``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .report import DataReport, describe_rows, plural

MIN_PER_CLASS = 2  # one for training and one for validation
FEW_PER_CLASS = 5
IMBALANCE_RATIO = 10.0


def drop_empty(rows: pd.DataFrame, ok: np.ndarray, report: DataReport, unit: str, name: str,
               what: str) -> pd.DataFrame:
    """Drop rows whose required cells are empty, with one warning counting them.

    Args:
        rows: the normalised rows.
        ok: True for rows to keep.
        report, unit, name: where and how to report.
        what: the cells concerned, e.g. "the text or label".
    """
    bad = rows["_row"].to_numpy()[~ok].tolist()
    if bad:
        has, was = plural(bad, "has", "have"), plural(bad, "was", "were")
        report.warn("empty_cells", f"{name}: {describe_rows(bad, unit)} {has} an empty {what} and {was} "
                    f"dropped ({len(bad)} in all).", "Fill in those cells or delete the rows.", rows=bad)
        report.count_dropped("empty_cells", len(bad))
    return rows[ok]


def hashes(keys: pd.Series) -> np.ndarray:
    """64-bit hashes of strings, valid within this process (Python's own string hash: 30x faster than
    pandas' for 100k long strings); only compared with each other, never stored."""
    return np.fromiter(map(hash, keys.tolist()), dtype=np.int64, count=len(keys))


def drop_duplicates(rows: pd.DataFrame, report: DataReport, unit: str, name: str) -> pd.DataFrame:
    """Keep the first copy of rows that repeat exactly; repeats inflate training and leak into validation."""
    dup = pd.Series(hashes(rows["_key"])).duplicated().to_numpy()
    if dup.any():
        bad = rows["_row"].to_numpy()[dup].tolist()
        report.count_dropped("duplicates", len(bad))
        if unit == "file":
            report.warn("duplicates", f"{name}: {describe_rows(bad, unit)} {plural(bad, 'is a copy', 'are copies')} "
                        "of an earlier image of the same class (the same bytes); only the first copy was kept "
                        f"({len(bad)} dropped).", "Remove the copies from the folders.", rows=bad)
        else:
            repeat = plural(bad, "repeats", "repeat")
            report.warn("duplicates", f"{name}: {describe_rows(bad, unit)} {repeat} an earlier row exactly; only "
                        f"the first copy was kept ({len(bad)} dropped).", "Remove the repeated rows from the file.",
                        rows=bad)
    return rows[~dup]


def conflicting_labels(rows: pd.DataFrame, text: pd.Series, report: DataReport, unit: str, name: str) -> None:
    """Warn about the same text given different labels: the model cannot learn both."""
    frame = pd.DataFrame({"h": hashes(text), "label": rows["label_name"].to_numpy()})
    counts = frame.groupby("h")["label"].nunique()
    clash = frame["h"].isin(counts.index[counts > 1]).to_numpy()
    if clash.any():
        bad = rows["_row"].to_numpy()[clash].tolist()
        has = plural(bad, "has", "have")
        if unit == "file":
            report.warn("conflicting_labels", f"{name}: {describe_rows(bad, unit)} {has} the same picture as a "
                        "file in another class folder.", "Keep each picture in the folder of its one class.", rows=bad)
            return
        report.warn("conflicting_labels", f"{name}: {describe_rows(bad, unit)} {has} the same text as another "
                    "row but a different label.", "Decide on one label for each text.", rows=bad)


def check_classes(labels: pd.Series, rows: pd.Series, report: DataReport, unit: str) -> None:
    """Too few classes, classes too small to split, and imbalance."""
    counts = labels.value_counts()
    if len(counts) == 1:
        report.error("single_class", f"Every example has the same label '{counts.index[0]}'; a classifier needs "
                     "at least two classes.", "Add examples of at least one other class.")
        return
    rare = counts[counts < MIN_PER_CLASS]
    if len(rare):
        where = rows[labels.isin(rare.index)].tolist()
        shown = f" ({describe_rows(where, unit)})" if len(where) <= 8 else ""
        report.error("rare_class", f"The class(es) {_classes(rare)} have fewer than {MIN_PER_CLASS} examples{shown} "
                     "(too few to split into training and validation).", "Add examples of these classes or "
                     "remove their rows.", rows=where)
    few = counts[(counts >= MIN_PER_CLASS) & (counts < FEW_PER_CLASS)]
    if len(few):
        report.warn("few_examples", f"The class(es) {_classes(few)} have fewer than {FEW_PER_CLASS} examples; "
                    "the model will hardly learn them.", "Add more examples of these classes.")
    if counts.min() >= MIN_PER_CLASS and counts.max() / counts.min() >= IMBALANCE_RATIO:
        report.warn("imbalance", f"The classes are imbalanced: '{counts.index[0]}' has {counts.iloc[0]} examples "
                    f"but '{counts.index[-1]}' only {counts.iloc[-1]}.", "Add examples of the small classes; "
                    "otherwise watch the per-class results, not only accuracy.")


def _classes(counts: pd.Series) -> str:
    shown = [f"'{k}' ({v})" for k, v in counts.head(10).items()]
    more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
    return ", ".join(shown) + more


def drop_leakage(train: pd.DataFrame, validation: pd.DataFrame, report: DataReport, unit: str,
                 name: str, split: str = "validation") -> pd.DataFrame:
    """Drop validation rows whose input also appears in training (the same text, or the same image bytes under
    any name): they would make the scores look better than they are."""
    leaked = np.isin(hashes(validation["_leak"]), hashes(train["_leak"]))
    if leaked.any():
        bad = validation["_row"].to_numpy()[leaked].tolist()
        report.count_dropped("leakage", len(bad))
        were = plural(bad, "was", "were")
        what = " (the same image content)" if unit == "file" else ""
        report.warn("leakage", f"{name}: {describe_rows(bad, unit)} also {plural(bad, 'appears', 'appear')} in "
                    f"the training data{what} and {were} removed from {split} ({len(bad)} in all).",
                    f"Keep {split} examples out of the training data.", rows=bad)
    return validation[~leaked]


NEAR_COPY_SHARE = 0.05  # below this share of the validation rows, near copies cannot move its figure much


def loose_text(text: str) -> str:
    """A text with case, numbers, punctuation and spacing evened out: "Order #1234 hasn't arrived!" and "order 98
    hasnt arrived" read the same."""
    text = re.sub(r"\d+", "0", str(text).casefold())
    return " ".join(re.sub(r"[\W_]+", " ", text.replace("'", "")).split())


def near_copies(train: pd.DataFrame, validation: pd.DataFrame, report: DataReport, unit: str, name: str) -> None:
    """Warn when validation rows are a training row's text but for case, numbers or punctuation (one template
    filled in twice, one message resent with another order number). They are real rows and stay, but a split that
    keeps such twins on both sides scores higher than the model will on new text; exact copies are dropped before
    this (``drop_leakage``)."""
    if validation is None or not len(validation) or "_leak" not in validation:
        return
    seen: dict[str, object] = {}
    for key, row in zip(map(loose_text, train["_leak"].tolist()), train["_row"].tolist()):
        if key:
            seen.setdefault(key, row)
    pairs = [(row, seen[key]) for key, row in zip(map(loose_text, validation["_leak"].tolist()),
                                                  validation["_row"].tolist()) if key in seen]
    if not pairs or len(pairs) < NEAR_COPY_SHARE * len(validation):
        return
    bad = [row for row, _ in pairs]
    first, twin = pairs[0]
    report.warn("near_copies", f"{name}: {describe_rows(bad, unit)} {plural(bad, 'is', 'are')} the text of a "
                f"training row but for case, numbers or punctuation ({len(bad)} of {len(validation)} validation "
                f"{unit}s; row {first} and training row {twin}, for one). The validation score will be higher than "
                "on new text.", "Give a validation file of texts written apart from the training ones (the Data "
                "step's \"Validation data\", or data.validation_path in a config), or score the run on one after "
                "training (studio eval RUN --data FILE).", rows=bad)

"""Regression data: a number to predict per text row, or per image (a folder with ``metadata.csv``).

Tables: a column of numbers (prices, scores, counts, sizes) beside a text column is a regression target. A column
of a few whole numbers (1-5 stars) is read as classes, as before, and a column of numbers with few distinct whole
values is read as a number: either way the other reading is offered as a choice (``candidates["task"]``) with the
reason, and ``task:`` picks it.

Images: the Hugging Face image-folder convention, a ``metadata.csv`` (or ``metadata.jsonl``) beside the images with
a ``file_name`` column and the value column, at the top or in each split folder (``train/metadata.csv``...).

Rows come out as ``_row``, ``text`` or ``image``, ``target`` (float), ``_key`` and ``_leak`` (see
``core.data.normalise``).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from . import groups
from .columns import Profile, header_words
from .readers import header_key
from .report import DataReport, describe_rows, plural, quoted
from .text import as_text

REGRESSION_TASKS = ("text-regression", "image-regression")
CLASSES_FOR = {"text-regression": "text-classification", "image-regression": "image-classification"}
REGRESSION_FOR = {v: k for k, v in CLASSES_FOR.items()}
# Header words naming a quantity worth predicting; an explicit one decides between several numeric columns.
TARGET_NAMES = {"target", "y", "value", "label", "score", "price", "amount", "cost", "count", "size", "rating",
                "stars", "age", "duration", "total", "quantity", "weight", "height", "length", "salary", "revenue",
                "sales", "popularity", "votes", "views", "likes", "installs", "downloads", "temperature", "grade",
                "mark", "points", "hours", "minutes", "days", "percent", "percentage", "rate"}
EXPLICIT_TARGETS = {"target", "y", "value", "label", "labels"}
# Header words of numbers that are not quantities: identifiers, positions and calendar fields.
NOT_QUANTITIES = {"id", "ids", "uuid", "guid", "key", "no", "nr", "num", "ref", "reference", "index", "row", "year",
                  "month", "day", "week", "hour", "date", "time", "timestamp", "ts", "epoch", "created", "updated",
                  "zip", "postcode", "phone", "version", "split", "fold", "code", "sku", "lat", "lon", "latitude",
                  "longitude"}
FILE_COLUMNS = ("file_name", "filename", "file", "image", "image_path", "path", "img", "image_file")
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
FEW_VALUES = 20  # whole-number targets with at most this many values could be classes instead
NUMBER_JUNK = r"[,\s$€£¥%]"


def is_regression(task: str | None) -> bool:
    return task in REGRESSION_TASKS


def numbers(values: pd.Series) -> np.ndarray:
    """The cells as floats (thousands separators, currency and per-cent signs ignored); NaN where not a number."""
    text = as_text(values).str.strip().str.replace(NUMBER_JUNK, "", regex=True)
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)


# --- tables: which column is the target -----------------------------------------------------------------
def quantity(p: Profile) -> bool:
    """A column of numbers that measure something (not identifiers, positions or dates)."""
    return p.kind in ("number", "rating") and not (set(header_words(p.column)) & NOT_QUANTITIES)


def target_name(column) -> bool:
    return header_key(column) in TARGET_NAMES or any(w in TARGET_NAMES for w in header_words(column))


def guess_task(profiles: dict[str, Profile], labels: list[Profile], texts: list[Profile],
               reasons: list[str]) -> str | None:
    """``text-regression`` when the table's target is a number: a numeric column called like a label (``target``,
    ``label``, ``y``) holding many values, or the only measured quantity beside text when no column could be
    classes; None otherwise (the classification rules decide).

    Args:
        profiles: every column's profile.
        labels: the columns that could be classes (``detect``'s candidates).
        texts: the columns that hold text.
        reasons: detection reasons; one is added when this decides.
    """
    numeric = [p for p in profiles.values() if p.kind == "number" and quantity(p)]
    explicit = [p for p in numeric if header_key(p.column) in EXPLICIT_TARGETS]
    if len(explicit) == 1 and texts:
        reasons.append(f"The task is text regression: '{explicit[0].column}' holds numbers "
                       f"({explicit[0].distinct} different values), a number to predict for each text.")
        return "text-regression"
    if numeric and texts and not [p for p in labels if not p.metadata]:
        names = ", ".join(repr(p.column) for p in numeric[:4])
        reasons.append(f"The task is text regression: {names} hold{'s' if len(numeric) == 1 else ''} numbers and no "
                       "column has a few values like classes.")
        return "text-regression"
    return None


def choose_target(profiles: dict[str, Profile], taken: set, found, report: DataReport, name: str) -> str | None:
    """The numeric column to predict, or None with an ``ambiguous_target`` (or ``missing_column``) problem.

    Args:
        profiles: every column's profile.
        taken: columns already given other roles.
        found: the ``Detection``; the reason and candidates are added.
        report: problems.
        name: the file, for messages.
    """
    free = [p for p in profiles.values() if p.column not in taken and quantity(p)]
    named = [p for p in free if target_name(p.column)]
    explicit = [p for p in named if header_key(p.column) in EXPLICIT_TARGETS]
    candidates = explicit or named or free
    found.candidates["target"] = [p.column for p in candidates] + [p.column for p in free if p not in candidates]
    if len(candidates) == 1:
        chosen = candidates[0]
        why = "its name says so" if chosen in named else "it is the only column of numbers"
        found.reasons.append(f"'{chosen.column}' is the target: {why} ({chosen.distinct} different values).")
        return chosen.column
    constant = [p for p in profiles.values() if p.kind == "constant" and p.column not in taken
                and target_name(p.column)]
    if not candidates and constant:
        report.error("constant_target", f"{name}: '{constant[0].column}' holds the same value "
                     f"({constant[0].examples[0]}) in every row; there is nothing to predict.",
                     "Choose the column whose numbers differ between examples.")
        return None
    if not candidates:
        report.error("missing_column", f"{name} has no column of numbers to predict (columns: "
                     f"{', '.join(repr(p) for p in profiles)}).", "Add a column with the number for each row, or "
                     "choose the classification task for a column of classes.")
        return None
    listed = "; ".join(p.describe() for p in candidates[:6])
    example = candidates[0].column
    flag = f'--set "data.columns.target={example}"' if " " in example else f"--set data.columns.target={example}"
    report.error("ambiguous_target", f"{name}: more than one column could be the number to predict: {listed}. The "
                 "studio will not guess which one you want.", f"Choose the target column: in the page, pick it in "
                 f"the 'target' list; on the command line, add {flag}.", options=found.candidates["target"])
    return None


def offer_other_reading(profile: Profile, found, task: str, values: np.ndarray | None = None) -> None:
    """When a numeric label could be read either way, say so and list both tasks as ``candidates["task"]``.

    Args:
        profile: the label or target column's profile.
        found: the ``Detection`` (its task is the reading chosen).
        task: the task chosen (a classification or a regression task).
        values: the column's numbers, when known (regression), to count its whole values.
    """
    if task in REGRESSION_FOR:  # classes read from a column of whole numbers (1-5 stars)
        if profile.kind != "rating":
            return
        other = REGRESSION_FOR[task]
        found.reasons.append(f"'{profile.column}' holds {profile.distinct} whole numbers, read as {profile.distinct} "
                             f"classes. To predict a number instead (3.6 stars, with errors measured in stars), "
                             f"choose task: {other}.")
    else:
        whole = values is not None and len(values) and np.all(values[~np.isnan(values)] % 1 == 0)
        distinct = len(np.unique(values[~np.isnan(values)])) if values is not None else profile.distinct
        if not whole or distinct > FEW_VALUES:
            return
        other = CLASSES_FOR[task]
        found.reasons.append(f"'{profile.column}' holds only {distinct} different whole numbers: it is predicted as "
                             f"a number (an answer of 3.6 is allowed). If each value is a category rather than an "
                             f"amount, choose task: {other}.")
    found.candidates["task"] = [task, other]


# --- tables: rows ------------------------------------------------------------------------------------------------
def table_rows(frame: pd.DataFrame, numbers_shown, columns: dict[str, str], report: DataReport, unit: str,
               name: str, text: pd.Series) -> pd.DataFrame:
    """Text and target rows; rows whose target is empty or not a number are dropped with a warning.

    Args:
        frame: the table.
        numbers_shown: the row numbers the user sees.
        columns: role -> column (``text``, ``target``).
        report, unit, name: where and how to report.
        text: the text column, cleaned (stripped, missing-value markers emptied).
    """
    raw = as_text(frame[columns["target"]]).str.strip()
    values = numbers(frame[columns["target"]])
    rows = pd.DataFrame({"_row": numbers_shown, "text": text.to_numpy(), "target": values})
    bad = (raw != "").to_numpy() & np.isnan(values)
    if bad.any():
        shown = rows["_row"].to_numpy()[bad].tolist()
        examples = quoted(sorted(set(raw[bad].tolist()))[:4])
        report.count_dropped("not_a_number", len(shown))
        report.warn("not_a_number", f"{name}: the target column '{columns['target']}' holds {examples} in "
                    f"{describe_rows(shown, unit)}, which {plural(shown, 'is not a number', 'are not numbers')}; "
                    f"{plural(shown, 'that row was', 'those rows were')} dropped.", "Write plain numbers there "
                    "(e.g. 1234.5), or delete those rows.", rows=shown)
    empty = (rows["text"] == "").to_numpy() | np.isnan(values)
    gone = rows["_row"].to_numpy()[empty & ~bad].tolist()
    if gone:
        report.count_dropped("empty_cells", len(gone))
        report.warn("empty_cells", f"{name}: {describe_rows(gone, unit)} {plural(gone, 'has', 'have')} an empty text "
                    f"or target and {plural(gone, 'was', 'were')} dropped ({len(gone)} in all).",
                    "Fill in those cells or delete the rows.", rows=gone)
    return keyed(rows[~empty].reset_index(drop=True), "text")


def keyed(rows: pd.DataFrame, item: str) -> pd.DataFrame:
    """Add ``_leak`` (the input: text, or an image's content hash already in ``_leak``) and ``_key`` (input and
    value: exact repeats are duplicates)."""
    if item == "text":
        rows["_leak"] = rows["text"]
    rows["_key"] = rows["_leak"] + "\x1f" + rows["target"].map(lambda v: f"{v:.10g}")
    return rows


# --- images: a folder with metadata.csv --------------------------------------------------------------------
def find_metadata(root: Path) -> tuple[list[Path], bool]:
    """The ``metadata.csv``/``metadata.jsonl`` files of an image folder and whether they are per split folder: one
    at its top (looking through single wrapping folders), or one in each split folder (``train/metadata.csv``...);
    ([], False) when there are none."""
    from .folders import ignored, split_of

    for _ in range(10):
        found = [root / n for n in METADATA_FILES if (root / n).is_file()]
        if found:
            return found[:1], False
        dirs = [d for d in root.iterdir() if d.is_dir() and not ignored(d.name)]
        in_splits = [d / n for d in dirs if split_of(d.name) for n in METADATA_FILES[:1] if (d / n).is_file()]
        in_splits += [d / METADATA_FILES[1] for d in dirs if split_of(d.name) and (d / METADATA_FILES[1]).is_file()
                      and not (d / METADATA_FILES[0]).is_file()]
        if in_splits:
            return sorted(in_splits), True
        if len(dirs) != 1:
            return [], False
        root = dirs[0]
    return [], False


def image_rows(files: list[Path], by_split: bool, report: DataReport, limits, name: str, columns: dict | None,
               found) -> pd.DataFrame | None:
    """Rows of every image a metadata file names, checked and decoded; None when nothing usable came out.

    Args:
        files: the metadata files (one, or one per split folder).
        by_split: the files sit in split folders (train/, validation/, test/), whose splits are used as given.
        report: problems.
        limits: ``DataLimits``.
        name: the upload, for messages.
        columns: the user's role -> column choices (``image``, ``target``), or None.
        found: the ``Detection``; roles, reasons and candidates are filled in.
    """
    from .folders import split_of

    frames = []
    for path in files:
        table = _read_metadata(path, report, limits)
        if table is None:
            return None
        split = (split_of(path.parent.name) or "train") if by_split else "train"
        frames.append(table.assign(_folder=str(path.parent), _split=split))
    frame = pd.concat(frames, ignore_index=True)
    if not _image_roles(frame.drop(columns=["_folder", "_split"]), columns or {}, report, name, found):
        return None
    rows = _checked_images(frame, found.columns, report, limits, name)
    return _image_groups(frame, rows, (columns or {}).get(groups.ROLE), report, found)


def _image_groups(frame: pd.DataFrame, rows: pd.DataFrame, wanted: str | None, report: DataReport,
                  found) -> pd.DataFrame | None:
    """The group column of metadata.csv (one specimen's several photos), as the user chose it; else one to offer."""
    from .columns import profile_columns

    if not wanted:
        groups.offer(found, profile_columns(frame.drop(columns=["_folder", "_split"])), len(frame))
        return rows
    column = _find_column(frame, wanted)
    if column is None:
        report.error("unknown_column", f"The group column '{wanted}' is not in metadata.csv; its columns are "
                     f"{', '.join(map(repr, frame.columns.drop(['_folder', '_split'])))}.",
                     "Pick another column as the group (the images that belong together), or set it to "
                     "'(not used)'.")
        return None
    if groups.refuse_shared_role(found.columns, column, report, "metadata.csv"):
        return None
    found.columns[groups.ROLE] = column
    found.reasons.append(f"'{column}' is the group column, as you chose.")
    return groups.attach(rows, frame, _shown_files(frame, found.columns["image"]), column)


def _read_metadata(path: Path, report: DataReport, limits) -> pd.DataFrame | None:
    from .readers import read_table

    if path.suffix == ".jsonl":
        try:
            records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            return pd.DataFrame.from_records(records)
        except (ValueError, UnicodeDecodeError) as exc:
            report.error("bad_metadata", f"{path.name} could not be read as JSON lines ({exc}).",
                         "Save it as one JSON object per line, or as metadata.csv.")
            return None
    table = read_table(path, report, limits)
    return None if table is None else table.frame


def _image_roles(frame: pd.DataFrame, given: dict, report: DataReport, name: str, found) -> bool:
    from .columns import profile_columns

    files = _find_column(frame, given["image"]) if given.get("image") else \
        next((c for want in FILE_COLUMNS for c in frame.columns if header_key(c) == want), None)
    if files is None:
        report.error("missing_column", f"{name}: metadata.csv has no file_name column (columns: "
                     f"{', '.join(map(repr, frame.columns))}).", "Name the column with each image's file name "
                     "'file_name' (the Hugging Face image-folder convention).")
        return False
    found.columns["image"] = files
    wanted = given.get("target") or given.get("label")
    if wanted:
        target = _find_column(frame, wanted)
        if target is None:
            report.error("unknown_column", f"The target column '{wanted}' is not in metadata.csv; its columns are "
                         f"{', '.join(map(repr, frame.columns))}.", "Pick one of the listed columns.")
            return False
        found.reasons.append(f"'{target}' is the target, as you chose.")
    else:
        group = _find_column(frame, given[groups.ROLE]) if given.get(groups.ROLE) else None
        target = choose_target(profile_columns(frame), {files, group}, found, report, f"{name} (metadata.csv)")
        if target is None:
            return False
    found.columns["target"] = target
    found.reasons.insert(0, f"The task is image regression: {name} has a metadata.csv naming each image "
                            f"('{files}') with a number ('{target}').")
    return True


def _find_column(frame: pd.DataFrame, wanted: str):
    key = header_key(wanted)
    return next((c for c in frame.columns if header_key(c) == key), None)


def _shown_files(frame: pd.DataFrame, column: str) -> list[str]:
    """metadata.csv's file names as the user wrote them (forward slashes): the rows' ``_row``."""
    return [str(Path(f).as_posix()) for f in as_text(frame[column]).str.strip()]


def _checked_images(frame: pd.DataFrame, columns: dict, report: DataReport, limits, name: str) -> pd.DataFrame:
    from .images import check_image

    shown = _shown_files(frame, columns["image"])
    paths = [(Path(folder) / f).resolve() for folder, f in zip(frame["_folder"], shown)]
    values = numbers(frame[columns["target"]])
    inside = [p.is_relative_to(Path(folder).resolve()) for p, folder in zip(paths, frame["_folder"])]
    exists = [ok and p.is_file() for p, ok in zip(paths, inside)]
    with ThreadPoolExecutor(4) as pool:
        checks = list(pool.map(lambda p: check_image(p, limits) if p is not None else None,
                               [p if ok else None for p, ok in zip(paths, exists)]))
    ok = np.array([c is not None and c.kind == "ok" for c in checks]) & ~np.isnan(values)
    _report_images(shown, exists, checks, values, report, name)
    rows = pd.DataFrame({"_row": shown, "image": [str(p) for p in paths], "target": values,
                         "_split": frame["_split"].to_numpy(),
                         "_leak": [c.digest if c is not None and c.kind == "ok" else "" for c in checks]})
    return keyed(rows[ok].reset_index(drop=True), "image")


def _report_images(shown, exists, checks, values, report: DataReport, name: str) -> None:
    missing = [s for s, e in zip(shown, exists) if not e]
    if missing:
        report.count_dropped("missing_image", len(missing))
        report.warn("missing_image", f"{name}: metadata.csv names {describe_rows(missing, 'file')} that "
                    f"{plural(missing, 'is', 'are')} not in the folder; {plural(missing, 'it was', 'they were')} "
                    "skipped.", "Put the images beside metadata.csv, or fix their names in it.", rows=missing)
    broken = [s for s, c in zip(shown, checks) if c is not None and c.kind != "ok"]
    if broken:
        report.count_dropped("unreadable_image", len(broken))
        report.warn("unreadable_image", f"{name}: {describe_rows(broken, 'file')} could not be read as "
                    f"{plural(broken, 'an image', 'images')}, so skipped.", "Re-save them as PNG or JPEG, or "
                    "remove them.", rows=broken)
    no_value = [s for s, v, e in zip(shown, values, exists) if e and np.isnan(v)]
    if no_value:
        report.count_dropped("not_a_number", len(no_value))
        report.warn("not_a_number", f"{name}: {describe_rows(no_value, 'file')} {plural(no_value, 'has', 'have')} "
                    "no number in metadata.csv, so skipped.", "Fill in a number for every image.", rows=no_value)


# --- checks, split and summary -------------------------------------------------------------------------------
def check_targets(rows: pd.DataFrame, report: DataReport, name: str) -> None:
    """A target that never changes leaves nothing to learn."""
    values = rows["target"].to_numpy(dtype=np.float64)
    if len(values) >= 2 and np.ptp(values) == 0:
        report.error("constant_target", f"{name}: every example has the same target value ({values[0]:g}); there is "
                     "nothing to predict.", "Choose the column whose numbers differ between examples.")


def check_validation_size(count: int, report: DataReport, name: str) -> None:
    """Warn when the validation split is too small for an error measured on it to mean anything."""
    if count < 20:
        report.warn("tiny_validation", f"{name}: only {count} example(s) are held out for validation, so the "
                    "errors measured on them move a lot from one example to the next.",
                    "Add examples (at least a few hundred) before trusting the scores.")


def value_bins(values, bins: int = 5) -> np.ndarray | None:
    """Quantile bin of each target, so a random split keeps low, middle and high values in both parts."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 * bins:
        return None
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def summary(train: pd.DataFrame, validation: pd.DataFrame, column: str) -> dict:
    """The target's name, range, centre, spread and histogram on the training rows (JSON-able)."""
    values = train["target"].to_numpy(dtype=np.float64)
    counts, edges = np.histogram(values, bins=min(20, max(1, len(np.unique(values)))))
    whole = bool(np.all(values % 1 == 0))
    return {"column": column, "mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "median": float(np.median(values)), "whole_numbers": whole,
            "distinct": int(len(np.unique(values))),
            "validation_mean": float(validation["target"].mean()) if len(validation) else None,
            "histogram": {"edges": [float(e) for e in edges], "counts": counts.astype(int).tolist()}}


def target_lines(summary_: dict) -> list[str]:
    """What the target looks like, for ``understood_lines``."""
    target = summary_.get("target")
    if not target:
        return []
    return [f"Target '{target['column']}': {target['min']:g} to {target['max']:g} (mean {target['mean']:.4g}, "
            f"spread {target['std']:.4g}, {target['distinct']} different values) in the training rows."]

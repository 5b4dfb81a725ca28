"""From a file (table, image folder or zip) to normalised rows, with the detection that chose the columns.

Rows are a DataFrame with ``_row`` (what the user sees: a row number or a file name), ``_key`` (the whole
example, for duplicates), ``_leak`` (the input alone, for train/validation leakage) and the payload:
``messages`` | ``text`` + ``label_name`` | ``image`` + ``label_name``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import chat, checks
from .detect import NAMES, Detection, detect
from .images import extract_zip, scan_images
from .limits import DataLimits
from .readers import header_key, read_table
from .report import DataReport, describe_rows
from .text import as_text


@dataclass
class Source:
    """One file's usable rows and how they were read."""

    name: str
    rows: pd.DataFrame
    unit: str
    read: int
    format: str
    detection: Detection
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


def load_source(path: Path, report: DataReport, limits: DataLimits, task: str | None,
                columns: dict | None, extract_to: Path | None = None) -> Source | None:
    """Read a file or folder and normalise its rows; None when nothing usable came out.

    Args:
        path: a table file, an image folder, or a zip of an image folder.
        report: collects problems.
        limits: size caps.
        task, columns: the user's choices (or, for a validation file, the training file's).
        extract_to: where a zip is extracted; beside the zip when None.
    """
    name = path.name or str(path)
    if path.is_dir() or path.suffix.lower() == ".zip":
        if task not in (None, "image-classification"):
            report.error("task_mismatch", f"{name} is an image folder or archive, but the task is {task}.",
                         "Choose image classification, or give a table file for this task.")
            return None
        return _image_source(path, report, limits, extract_to)
    table = read_table(path, report, limits)
    if table is None:
        return None
    if task == "image-classification":
        report.error("task_mismatch", f"{name} is a table, but image classification needs a folder of images "
                     "with one subfolder per class (or a zip of one).", "Upload the image folder as a zip.")
        return None
    _check_header(table.frame, report, name)
    found = detect(table.frame, report, task, columns, name)
    if found.task is None or not _has_roles(found):
        return Source(name, pd.DataFrame(), table.unit, len(table.frame), table.format, found, table.encoding,
                      table.notes)
    build = _chat_rows if found.task == "chat" else _classification_rows
    rows = build(table.frame, table.rows, found.columns, report, table.unit, name)
    return Source(name, rows, table.unit, len(table.frame), table.format, found, table.encoding, table.notes)


def _has_roles(found: Detection) -> bool:
    cols = found.columns
    if found.task == "chat":
        return "messages" in cols or {"prompt", "response"} <= set(cols)
    return {"text", "label"} <= set(cols)


def _check_header(frame: pd.DataFrame, report: DataReport, name: str) -> None:
    """A first line that reads like data (numbers, sentences, values repeated below) means no header."""
    headers = [str(c) for c in frame.columns]
    known = {n for names in NAMES.values() for n in names}
    if all(header_key(h) in known for h in headers):
        return
    numeric = sum(h.replace(".", "", 1).lstrip("-").isdigit() for h in headers)
    sentences = sum(len(h) > 40 and " " in h for h in headers)
    repeated = 0
    for col in frame.columns[:10]:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col].dtype):
            repeated += bool((as_text(frame[col].head(2000)).str.strip() == str(col)).any())
    if numeric == len(headers) or sentences or (repeated and repeated >= len(headers) / 2):
        report.error("no_header", f"The first line of {name} ({', '.join(repr(h[:40]) for h in headers)}) "
                     "looks like data, not column names.", "Add a first line with column names, such as "
                     "'text,label' or 'prompt,response'.")


def _chat_rows(frame, numbers, columns, report, unit, name) -> pd.DataFrame:
    if "messages" in columns:
        system = frame[columns["system"]] if "system" in columns else None
        turns, why = chat.from_messages(frame[columns["messages"]], system)
        ok = np.array([w is None for w in why], dtype=bool)
        _report_bad_conversations(numbers, why, report, unit, name, columns["messages"])
        rows = pd.DataFrame({"_row": numbers, "messages": turns})
        rows = rows[ok]
    else:
        turns, ok = chat.from_columns(frame, columns)
        rows = pd.DataFrame({"_row": numbers, "messages": turns})
        what = "prompt or response" + (" (after joining the input)" if "input" in columns else "")
        rows = checks.drop_empty(rows, ok, report, unit, name, what)
    rows["_key"] = [chat.conversation_key(t) for t in rows["messages"]]
    rows["_leak"] = rows["_key"]
    return rows.reset_index(drop=True)


def _report_bad_conversations(numbers, why, report, unit, name, column) -> None:
    by_reason = defaultdict(list)
    for number, reason in zip(numbers.tolist(), why):
        if reason is not None:
            by_reason[reason].append(number)
    for reason, bad in by_reason.items():
        report.warn("bad_messages", f"{name}: the '{column}' cell of {describe_rows(bad, unit)} {reason}; "
                    f"{'it was' if len(bad) == 1 else 'they were'} dropped.", "Write each conversation as a "
                    'list of turns like [{"role": "user", "content": "..."}, {"role": "assistant", "content": '
                    '"..."}].', rows=bad)


def _classification_rows(frame, numbers, columns, report, unit, name) -> pd.DataFrame:
    text = as_text(frame[columns["text"]]).str.strip()
    label = as_text(frame[columns["label"]]).str.strip()
    rows = pd.DataFrame({"_row": numbers, "text": text.to_numpy(), "label_name": label.to_numpy()})
    ok = ((text != "") & (label != "")).to_numpy()
    rows = checks.drop_empty(rows, ok, report, unit, name, "text or label").reset_index(drop=True)
    rows["_leak"] = rows["text"]
    rows["_key"] = rows["text"] + "\x1f" + rows["label_name"]
    many = rows["label_name"].nunique()
    if len(rows) >= 20 and many > len(rows) / 2:
        report.warn("label_many_values", f"{name}: the label column '{columns['label']}' has {many} different "
                    f"values in {len(rows)} rows; it looks like free text, not classes.",
                    "Check that the right column is the label.")
    return rows


def _image_source(path, report, limits, extract_to) -> Source | None:
    name = path.name
    root = path
    if path.suffix.lower() == ".zip" and not path.is_dir():
        if not path.exists():
            report.error("missing_file", f"{path} does not exist.", "Check the path, or upload the file again.")
            return None
        root = extract_zip(path, report, limits, extract_to)
        if root is None:
            return None
    found = scan_images(root, report, limits, name)
    if found is None:
        return None
    rows = pd.DataFrame({"_row": found.shown, "image": found.paths, "label_name": found.classes})
    rows["_key"] = rows["image"]
    rows["_leak"] = rows["image"]
    detection = Detection("image-classification", {"image": "file", "label": "folder"},
                          [f"The task is image classification: {name} holds one folder per class."])
    fmt = "zip" if root is not path else "folder"
    return Source(name, rows, "file", len(rows), fmt, detection, None, found.notes)

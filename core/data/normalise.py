"""From a file (table, image folder or zip) to normalised rows, with the detection that chose the columns.

Rows are a DataFrame with ``_row`` (what the user sees: a row number or a file name), ``_key`` (the whole
example, for duplicates), ``_leak`` (the input alone, for train/validation leakage) and the payload:
``messages`` | ``text`` + ``label_name`` | ``image`` + ``label_name`` (+ ``_split`` for image folders that
come in train/validation/test folders). Class names are normalised here (variants merged, with a warning),
and missing-value markers (``#N/A``, ``NULL``...) count as empty cells.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import chat, checks, documents, groups, preference, regression, turns
from .archive import unpack_zip
from .detect import NAMES, Detection, detect, find_column
from .images import scan_images
from .labels import merges_text, normalise_labels, similar_names
from .limits import DataLimits
from .readers import header_key, read_table
from .report import DataReport, describe_rows, plural, quoted
from .text import as_text, missing_mask

NA_WORDS = {"NA", "na", "Na", "n.a.", "N.A.", "n.a", "N.A"}
MARKER_CLASS_SHARE = 0.25  # a word marker ("none") on this share of label cells is taken as a class
WORD_MARKERS = {"none", "n/a", "na", "n.a."}  # "#N/A", "NULL", "nan" are never classes
MULTI_LABEL_DROP = 0.05  # up to this share of multi-label rows is dropped with a warning; more blocks


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


def load_source(path: Path, report: DataReport, limits: DataLimits, task: str | None, columns: dict | None,
                unpack_dir=None, sheet: str | None = None,
                special_tokens: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> Source | None:
    """Read a file or folder and normalise its rows; None when nothing usable came out.

    Args:
        path: a table file, an image folder, or a zip of an image folder.
        report: collects problems.
        limits: size caps.
        task, columns: the user's choices (or, for a validation file, the training file's).
        unpack_dir: where zips are unpacked (a folder in the studio home, or a function giving it); never beside
            the zip.
        sheet: for a workbook, the sheet to read (every sheet when None).
        optional: roles in ``columns`` that the file may lack (a validation file without the group column).
        special_tokens: the tokenizer's special tokens, looked for inside chat text.
    """
    name = path.name or str(path)
    if documents.is_documents(path, task, limits):
        return _document_source(path, report, limits, unpack_dir, task)
    if path.is_dir() or path.suffix.lower() == ".zip":
        if task not in (None, "image-classification", "image-regression"):
            report.error("task_mismatch", f"{name} is an image folder or archive, but the task is {task}.",
                         "Choose image classification (or image regression), or give a table file for this task.")
            return None
        return _image_source(path, report, limits, unpack_dir, task, columns)
    table = read_table(path, report, limits, sheet=sheet)
    if table is None:
        return None
    if task == "image-classification":
        report.error("task_mismatch", f"{name} is a table, but image classification needs a folder of images "
                     "with one subfolder per class (or a zip of one).", "Upload the image folder as a zip.")
        return None
    if task == "image-regression":
        report.error("task_mismatch", f"{name} is a table, but image regression needs a folder of images with a "
                     "metadata.csv (file_name and the number of each image), or a zip of one.",
                     "Put the table beside the images as metadata.csv and upload the folder as a zip.")
        return None
    _check_header(table.frame, report, name)
    if optional and columns:
        columns = {role: col for role, col in columns.items()
                   if role not in optional or find_column(table.frame, str(col)) is not None}
    found = detect(table.frame, report, task, columns, name)
    if found.task is None or not _has_roles(found) or not report.ok:
        return Source(name, pd.DataFrame(), table.unit, len(table.frame), table.format, found, table.encoding,
                      table.notes)
    if found.task == "preference":
        rows = preference.pair_rows(table.frame, table.rows, found.columns, report, table.unit, name)
        rows = _drop_templated(rows, report, table.unit, name, special_tokens)
    elif found.task == "chat":
        rows = _chat_rows(table.frame, table.rows, found.columns, report, table.unit, name, special_tokens)
    elif regression.is_regression(found.task):
        text = _cleaned(table.frame, found.columns, ("text",), report, table.unit, name, table.rows)["text"]
        rows = regression.table_rows(table.frame, table.rows, found.columns, report, table.unit, name, text)
    else:
        rows = _classification_rows(table.frame, table.rows, found.columns, report, table.unit, name)
    rows = groups.attach(rows, table.frame, table.rows, found.columns.get(groups.ROLE))
    return Source(name, rows, table.unit, len(table.frame), table.format, found, table.encoding, table.notes)


def _has_roles(found: Detection) -> bool:
    cols = found.columns
    if found.task == "preference":
        return {"chosen", "rejected"} <= set(cols)
    if found.task == "chat":
        return "messages" in cols or {"prompt", "response"} <= set(cols) or {"speaker", "content"} <= set(cols)
    if regression.is_regression(found.task):
        return {"text", "target"} <= set(cols)
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


def _cleaned(frame, columns: dict[str, str], roles, report, unit, name, numbers) -> dict[str, pd.Series]:
    """The role columns as stripped text with missing-value markers emptied; one warning names the markers."""
    out, hit, markers = {}, np.zeros(len(frame), dtype=bool), set()
    for role in roles:
        if role in columns:
            values = as_text(frame[columns[role]]).str.strip()
            mask = missing_mask(values)
            if role != "label" or not _codes(values):  # "NA" is a class among codes like US, UK, NA
                mask = mask | values.isin(NA_WORDS).to_numpy(dtype=bool)
            if role == "label" and mask.any():
                mask = _markers_that_are_classes(values, mask, report, name)
            if mask.any():
                hit |= mask
                markers |= set(values[mask].tolist())
                values = values.mask(mask, "")
            out[role] = values
    if hit.any():
        bad = np.asarray(numbers)[hit].tolist()
        report.warn("missing_values", f"{name}: {describe_rows(bad, unit)} {plural(bad, 'holds', 'hold')} "
                    f"{quoted(sorted(markers))} where a value should be: a marker of a missing value, not "
                    f"data; {plural(bad, 'it was', 'they were')} treated as empty.", "Fill in the real values, "
                    "or delete those rows.", rows=bad)
    return out


def _markers_that_are_classes(values: pd.Series, mask: np.ndarray, report, name) -> np.ndarray:
    """Keep as classes the label markers that are plainly classes: ``-`` beside ``+`` (polarity), or a word
    such as ``none`` or ``N/A`` on a quarter of the rows or more (an intent set's "none of these")."""
    distinct = set(values.unique().tolist())
    kept = []
    for marker in sorted(set(values[mask].tolist())):
        rows = (values == marker).to_numpy()
        symbol = marker in ("-", "--", "?") and distinct & {"+", "++", "0", "="}
        if symbol or (marker.lower() in WORD_MARKERS and rows.mean() >= MARKER_CLASS_SHARE):
            mask = mask & ~rows
            kept.append((marker, int(rows.sum())))
    if kept and not all(m in ("-", "--", "?") for m, _ in kept):
        listed = ", ".join(f"{m!r} ({n} rows)" for m, n in kept)
        report.warn("marker_kept_as_class", f"{name}: the label(s) {listed} usually mean 'no value', but are so "
                    "common here that they were kept as a class.", "If they mean 'no label', delete those rows; "
                    "if they are a class (none of the others), nothing to do.")
    return mask


def _codes(values: pd.Series) -> bool:
    """True when most distinct values are 2-3 letter upper-case codes (countries, regions)."""
    distinct = pd.Series(values.unique()[:500])
    distinct = distinct[distinct != ""]
    return len(distinct) > 0 and distinct.str.fullmatch(r"[A-Z]{2,3}").mean() >= 0.5


# --- chat ------------------------------------------------------------------------------------------------

def _chat_rows(frame, numbers, columns, report, unit, name, special_tokens) -> pd.DataFrame:
    if "speaker" in columns:
        rows = _turn_rows(frame, numbers, columns, report, unit, name)
    elif "messages" in columns:
        system = frame[columns["system"]] if "system" in columns else None
        turns, why = chat.from_messages(frame[columns["messages"]], system)
        ok = np.array([w is None for w in why], dtype=bool)
        _report_bad_conversations(numbers, why, report, unit, name, columns["messages"], ok.any())
        rows = pd.DataFrame({"_row": numbers, "messages": turns})
        rows = rows[ok]
    else:
        clean = _cleaned(frame, columns, ("prompt", "input", "response", "system"), report, unit, name, numbers)
        turns, ok = chat.from_columns(pd.DataFrame({columns[r]: v for r, v in clean.items()}), columns)
        rows = pd.DataFrame({"_row": numbers, "messages": turns})
        what = "prompt or response" + (" (after joining the input)" if "input" in columns else "")
        rows = checks.drop_empty(rows, ok, report, unit, name, what)
    rows["_key"] = [chat.conversation_key(t) for t in rows["messages"]]
    rows["_leak"] = rows["_key"]
    rows = _drop_templated(rows.reset_index(drop=True), report, unit, name, special_tokens)
    return rows.reset_index(drop=True)


def _turn_rows(frame, numbers, columns, report, unit, name) -> pd.DataFrame:
    """Conversations from a turn-per-row log; each is shown by the row of its first turn."""
    unknown = turns.unknown_speakers(frame, columns)
    if unknown.any():
        bad = np.asarray(numbers)[unknown].tolist()
        who = quoted(sorted(set(as_text(frame[columns["speaker"]])[unknown].str.strip())))
        report.count_dropped("unknown_speaker", len(bad))
        report.warn("unknown_speaker", f"{name}: {describe_rows(bad, unit)} {plural(bad, 'has', 'have')} the speaker "
                    f"{who}, which is neither the user nor the assistant; {plural(bad, 'it was', 'they were')} "
                    "left out of the conversations.", "Rename those speakers to user or assistant if they belong "
                    "in the conversations.", rows=bad)
    conversations, first_rows, why = turns.conversations(frame, np.asarray(numbers), columns)
    ok = np.array([w is None for w in why], dtype=bool)
    _report_bad_conversations(np.asarray(first_rows), why, report, unit, name,
                              columns.get("conversation") or columns["speaker"], ok.any(),
                              "Each conversation needs turns from both sides (user and assistant).")
    rows = pd.DataFrame({"_row": first_rows, "messages": conversations})
    return rows[ok]


def _drop_templated(rows: pd.DataFrame, report, unit, name, special_tokens) -> pd.DataFrame:
    """Conversations with chat-template markers in their text would teach the model to print them."""
    if rows.empty:
        return rows
    marked = chat.template_mask(rows["_key"], tuple(special_tokens))
    if not marked.any():
        return rows
    bad = rows["_row"].to_numpy()[marked].tolist()
    if marked.mean() >= 0.5:
        report.error("template_markers", f"{name}: {describe_rows(bad, unit)} ({marked.mean():.0%} of the "
                     "conversations) already hold chat-template markers such as <|im_start|> or [INST]: the text "
                     "was formatted for some model before it was saved.", "Save the plain turns instead (one "
                     "column per role, or a messages list of role/content turns); the studio adds the chosen "
                     "model's own template.", rows=bad)
        return rows
    report.count_dropped("template_markers", len(bad))
    report.warn("template_markers", f"{name}: {describe_rows(bad, unit)} {plural(bad, 'holds', 'hold')} chat-"
                "template markers such as <|im_end|> or [INST] inside the text; the model would learn to write "
                f"them, so {plural(bad, 'it was', 'they were')} dropped.", "Remove the markers from those rows; "
                "the studio adds the model's own template.", rows=bad)
    return rows[~marked]


BAD_CONVERSATION_FIX = ('Write each conversation as a list of turns like [{"role": "user", "content": "..."}, '
                        '{"role": "assistant", "content": "..."}].')


def _report_bad_conversations(numbers, why, report, unit, name, column, any_ok: bool,
                              fix: str = BAD_CONVERSATION_FIX) -> None:
    by_reason = defaultdict(list)
    for number, reason in zip(numbers.tolist(), why):
        if reason is not None:
            by_reason[reason].append(number)
    for reason, bad in by_reason.items():
        report.count_dropped("bad_messages", len(bad))
        report.warn("bad_messages", f"{name}: the '{column}' cell of {describe_rows(bad, unit)} {reason}; "
                    f"{'it was' if len(bad) == 1 else 'they were'} dropped.", fix, rows=bad)
    roles = Counter(role for reason in why for role in chat.unknown_roles(reason))
    if roles and not any_ok:
        listed = ", ".join(f"'{r}' ({n} conversation{'s' if n > 1 else ''})" for r, n in roles.most_common(6))
        report.error("unknown_roles", f"{name}: no conversation can be used: they use roles the studio does not "
                     f"know: {listed}. Known roles are system, user (customer, client, human...) and assistant "
                     "(agent, support, bot...).", "Rename the roles in the file: the side that asks to 'user', the "
                     "side whose answers the model should learn to 'assistant'.", options=list(roles))


# --- text classification --------------------------------------------------------------------------------

def _classification_rows(frame, numbers, columns, report, unit, name) -> pd.DataFrame:
    clean = _cleaned(frame, columns, ("text", "label"), report, unit, name, numbers)
    text, label = clean["text"], clean["label"]
    rows = pd.DataFrame({"_row": numbers, "text": text.to_numpy(), "label_name": label.to_numpy()})
    ok = ((text != "") & (label != "")).to_numpy()
    rows = checks.drop_empty(rows, ok, report, unit, name, "text or label").reset_index(drop=True)
    rows = normalise_classes(rows, report, unit, name, f"the label column '{columns['label']}'")
    rows["_leak"] = rows["text"]
    rows["_key"] = rows["text"] + "\x1f" + rows["label_name"]
    many = rows["label_name"].nunique()
    if len(rows) >= 20 and many > len(rows) / 2:
        report.warn("label_many_values", f"{name}: the label column '{columns['label']}' has {many} different "
                    f"values in {len(rows)} rows; it looks like free text, not classes.",
                    "Check that the right column is the label.")
    return rows


def normalise_classes(rows: pd.DataFrame, report: DataReport, unit: str, name: str, what: str,
                      multi: bool = True) -> pd.DataFrame:
    """Merge spelling variants of class names (with a warning listing them) and set multi-label rows aside.

    Args:
        rows: normalised rows with ``label_name``.
        report, unit, name: where and how to report.
        what: what holds the classes, for messages ("the label column 'team'", "the class folders").
        multi: look for several labels in one cell (not for folder names).
    """
    if rows.empty:
        return rows
    fixes = normalise_labels(rows["label_name"])
    if multi and fixes.multi:
        rows = _set_aside_multi(rows, fixes.multi, report, unit, name, what)
    if fixes.merges:
        report.merged += fixes.merges
        report.warn("label_variants", f"{name}: class names in {what} that differ only in case, spaces, a plural "
                    f"'s' or number format were merged: {merges_text(fixes.merges)}.", "If any of these are "
                    "really different classes, rename them in the data so they differ by more than that.")
    mapping = {**{v: v for v in fixes.multi}, **fixes.mapping}
    rows = rows.assign(label_name=rows["label_name"].map(mapping))
    _warn_similar(rows["label_name"], report, name, what)
    return rows


def _warn_similar(labels: pd.Series, report, name, what) -> None:
    """Names one letter apart or one a copy/abbreviation of the other are probably one class split in two."""
    counts = labels.value_counts()
    pairs = similar_names(list(counts.index))
    if pairs:
        listed = "; ".join(f"{a!r} ({counts[a]}) and {b!r} ({counts[b]})" for a, b in pairs[:6])
        report.warn("similar_labels", f"{name}: some class names in {what} look like one class written two ways: "
                    f"{listed}. They are kept as separate classes.", "If they are the same class, give them one "
                    "name in the data; if they really differ, nothing to do.")


def _set_aside_multi(rows, multi: dict, report, unit, name, what) -> pd.DataFrame:
    hit = rows["label_name"].isin(list(multi)).to_numpy()
    bad = rows["_row"].to_numpy()[hit].tolist()
    example = next(iter(multi))
    message = (f"{name}: {describe_rows(bad, unit)} of {what} hold several labels in one cell (e.g. {example!r}, "
               f"which is {quoted(multi[example])}); multi-label classification is not supported yet.")
    if hit.mean() > MULTI_LABEL_DROP:
        report.error("multi_label", message, "Keep one label per row (the main one) and upload again; to predict "
                     "several labels per text, train one yes/no classifier per label.", rows=bad)
        return rows
    report.count_dropped("multi_label", len(bad))
    report.warn("multi_label", message + f" {plural(bad, 'That row was', 'Those rows were')} dropped.",
                "Keep one label per row (the main one) to use those rows.", rows=bad)
    return rows[~hit]


# --- documents -------------------------------------------------------------------------------------------

def _document_source(path, report, limits, unpack_dir, task) -> Source | None:
    rows = documents.read_documents(path, report, limits, unpack_dir)
    if rows is None:
        return None
    why = ("The task is domain adaptation on documents, as you chose." if task else
           f"The task is domain adaptation on documents: {path.name} is {documents.describe(path)}.")
    fmt = "zip" if path.suffix.lower() == ".zip" else "folder" if path.is_dir() else "document"
    return Source(path.name, rows, "file", len(rows), fmt, Detection("text-completion", {}, [why]))


# --- images ----------------------------------------------------------------------------------------------

def _image_source(path, report, limits, unpack_dir, task=None, columns=None) -> Source | None:
    name = path.name
    root = path
    if path.suffix.lower() == ".zip" and not path.is_dir():
        if not path.exists():
            report.error("missing_file", f"{path} does not exist.", "Check the path, or upload the file again.")
            return None
        if unpack_dir is None:
            report.error("no_unpack_folder", f"{name} is a zip, but no folder was given to unpack it into.",
                         "Give load_data the studio home (home=...) or an unpack_dir.")
            return None
        root = unpack_zip(path, report, limits, unpack_dir)
        if root is None:
            return None
    elif not path.exists():
        report.error("missing_file", f"{path} does not exist.", "Check the path, or upload the file again.")
        return None
    if task != "image-classification":
        metadata, by_split = regression.find_metadata(root)
        if metadata:
            return _metadata_source(root, path, metadata, by_split, report, limits, columns)
    if task == "image-regression":
        report.error("no_metadata", f"{name} has no metadata.csv: image regression needs one beside the images, "
                     "with a file_name column and the number to predict for each image.", "Add metadata.csv "
                     "(e.g. 'file_name,count' then '0001.png,3' on each line) and upload the folder again.")
        return None
    found = scan_images(root, report, limits, name)
    if found is None:
        return None
    rows = pd.DataFrame({"_row": found.shown, "image": found.paths, "label_name": found.classes,
                         "_split": found.splits, "_leak": found.digests})
    if found.groups:  # class folders of subfolders: each subfolder is a group (core/data/groups.py)
        rows["_group"] = found.groups
    rows = normalise_classes(rows, report, "file", name, "the class folders", multi=False)
    rows["_key"] = rows["_leak"] + "\x1f" + rows["label_name"]
    reasons = [f"The task is image classification: {name} holds one folder per class."] + found.notes
    roles = {"image": "file", "label": "folder", **({groups.ROLE: groups.SUBFOLDER} if found.groups else {})}
    detection = Detection("image-classification", roles, reasons)
    fmt = "zip" if root is not path else "folder"
    return Source(name, rows, "file", len(rows), fmt, detection, None, found.notes)


def _metadata_source(root, path, metadata, by_split, report, limits, columns) -> Source | None:
    """Images with a number each, listed in metadata.csv (``core.data.regression``)."""
    detection = Detection("image-regression")
    rows = regression.image_rows(metadata, by_split, report, limits, path.name, columns, detection)
    if rows is None:
        return None
    fmt = "zip" if root is not path else "folder"
    return Source(path.name, rows, "file", len(rows), fmt, detection)

"""``load_data``: one call from an uploaded file to validated, split, summarised datasets."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import checks, corpus, groups, pairs, regression, sanity
from .detect import TASKS
from .limits import DataLimits
from .normalise import Source, load_source
from .prepared import PreparedData, natural_sorted
from .readers import EXCEL, read_table
from .report import DataReport, describe_rows
from .split import default_fraction, split_indices
from .stats import class_table, length_summary, render_chat, token_lengths

PREVIEW_ROWS = 20


def load_data(path, *, task=None, columns=None, validation_path=None, validation_fraction=None, seed=0,
              tokenizer=None, max_length=None, limits=None, home=None, unpack_dir=None,
              sheet=None) -> PreparedData:
    """Read, check, split and summarise a dataset; data problems land in ``report``, never in exceptions.

    Nothing is ever written, renamed or deleted beside ``path``: a zip is unpacked into the studio home.

    Args:
        path: CSV/TSV/Excel/JSON/JSONL/Parquet file, an image folder (one subfolder per class, optionally inside
            train/validation/test folders), or a zip of one. ``~`` is expanded; ``book.xlsx#Sheet`` picks a sheet.
        task: "chat", "text-classification" or "image-classification"; detected when None.
        columns: role -> column name (roles: prompt, input, response, system, messages, text, label).
        validation_path: a separate validation file in the same layout; replaces the automatic split.
        validation_fraction: share held out when there is no validation file; chosen from the size when None.
        seed: fixes the split and the token-length sample.
        tokenizer: the model's tokenizer, for token lengths, truncation counts and the rendered template.
        max_length: the training max length in tokens; longer examples are counted as truncated.
        limits: ``DataLimits`` caps for untrusted uploads; generous defaults when None.
        home: the studio home (``core.home.Home``) whose ``cache/unpacked`` receives unpacked zips; when None,
            the home the file was uploaded into, else ``Home.resolve()`` ($STUDIO_HOME or ~/.finetune-studio).
        unpack_dir: the folder for unpacked zips, instead of the home's.
        sheet: the workbook sheet to read (every sheet, joined when their columns agree, when None).
    """
    if columns is not None and not isinstance(columns, dict):
        raise TypeError("columns must be a dict of role -> column name")
    limits = limits or DataLimits()
    report = DataReport()
    prepared = PreparedData(task, {}, [], None, None, None, report)
    path, sheet = _split_sheet(Path(os.path.expanduser(str(path))), sheet)
    if task is not None and task not in TASKS:
        report.error("unknown_task", f"'{task}' is not a task.", f"Use one of {', '.join(TASKS)}.")
        return _finish(prepared, None, path)
    if validation_fraction is not None and not 0.0 < validation_fraction < 0.9:
        report.error("bad_fraction", f"The validation fraction {validation_fraction} is out of range.",
                     "Use a share between 0.01 and 0.5, or leave it empty.")
    context = _Context(limits, unpack_dir, home, _special_tokens(tokenizer))
    source = load_source(path, report, limits, task, columns, context.unpack(path), sheet, context.special_tokens)
    if source is None:
        return _finish(prepared, None, path)
    prepared.task = source.detection.task
    prepared.columns = dict(source.detection.columns)
    prepared.detection = list(source.detection.reasons)
    prepared.candidates = {role: list(c) for role, c in source.detection.candidates.items()}
    if prepared.task is None or source.rows.empty:
        if prepared.task is not None and report.ok:
            report.error("no_rows", f"{source.name} has no usable rows.", "Fill in the rows or choose other columns.")
        return _finish(prepared, source, path)
    if validation_path:
        validation_path = Path(os.path.expanduser(str(validation_path)))
    _assemble(prepared, source, validation_path, validation_fraction, seed, tokenizer, max_length, context)
    return _finish(prepared, source, path)


def inspect_columns(path, limits=None, sheet=None) -> list[str]:
    """The column names of a table file (cleaned as matching sees them), read from its first rows only.

    Args:
        path: a table file (``~`` expanded, ``book.xlsx#Sheet`` picks a sheet); an image folder or zip gives [].
        limits: ``DataLimits`` caps.
        sheet: the workbook sheet, when the sheets differ.
    """
    path, sheet = _split_sheet(Path(os.path.expanduser(str(path))), sheet)
    if path.is_dir() or path.suffix.lower() == ".zip":
        return []
    table = read_table(path, DataReport(), limits or DataLimits(), nrows=50, sheet=sheet)
    return [] if table is None else list(table.frame.columns)


class _Context:
    """What a load needs beyond the file: limits, where zips go, the tokenizer's special tokens."""

    def __init__(self, limits, unpack_dir, home, special_tokens):
        self.limits, self.special_tokens = limits, special_tokens
        self._unpack_dir, self._home = unpack_dir, home

    def unpack(self, path: Path):
        """A function giving where the zip ``path`` is unpacked: called only when a zip passed its checks, so
        reading a CSV or refusing a zip never creates a studio home."""
        if self._unpack_dir is not None:
            return lambda: Path(os.path.expanduser(str(self._unpack_dir)))
        return lambda: unpack_folder(self._home, path)


def unpack_folder(home=None, path=None) -> Path:
    """The folder where zips are unpacked: ``<home>/cache/unpacked``.

    Args:
        home: a ``core.home.Home`` (or its root folder); when None, the home ``path`` was uploaded into, else
            ``Home.resolve()``.
        path: the data file, to find the home it was uploaded into.
    """
    from ..home import Home

    if home is None and path is not None:
        home = _upload_home(Path(path))
    if home is None:
        home = Home.resolve()
    root = home.root if isinstance(home, Home) else Path(os.path.expanduser(str(home)))
    return root / "cache" / "unpacked"


def _upload_home(path: Path):
    """The studio home an uploaded file sits in (``<home>/uploads/<session>/<upload>/<file>``), or None."""
    for parent in path.resolve().parents:
        if parent.name == "uploads" and (parent.parent / "runs").is_dir():
            return parent.parent
    return None


def _split_sheet(path: Path, sheet):
    """``book.xlsx#Sheet`` -> (book.xlsx, "Sheet") when no file has the whole name."""
    if sheet is None and "#" in path.name and not path.exists():
        stem, _, wanted = path.name.rpartition("#")
        candidate = path.with_name(stem)
        if candidate.suffix.lower() in EXCEL and wanted:
            return candidate, wanted
    return path, sheet


def _special_tokens(tokenizer) -> tuple[str, ...]:
    """The tokenizer's special tokens that look like markup (``<|im_end|>``, ``</s>``): never inside chat text."""
    tokens = getattr(tokenizer, "all_special_tokens", None) or ()
    return tuple(t for t in tokens if isinstance(t, str) and len(t) >= 3 and t[0] in "<[" and t[-1] in ">]")


# Tasks whose rows are not one example each check, split and summarise themselves (their own modules).
OWN_ASSEMBLY = {"preference": pairs.assemble, "text-completion": corpus.assemble}


def _assemble(prepared, source: Source, validation_path, fraction, seed, tokenizer, max_length, context):
    report, task = prepared.report, prepared.task
    if task in OWN_ASSEMBLY:
        columns = prepared.columns or None  # a validation file is read with the training file's columns
        read = lambda other: load_source(other, report, context.limits, task, columns,  # noqa: E731
                                         context.unpack(other), None, context.special_tokens)
        OWN_ASSEMBLY[task](prepared, source, validation_path, fraction, seed, tokenizer, max_length, read)
        return
    train, validation, test = _checked_rows(prepared, source, validation_path, context)
    if len(train) < 20 and report.ok:
        report.warn("few_rows", f"{source.name} has only {len(train)} usable {source.unit}s.",
                    "Add more examples; a few hundred give far more reliable results.")
    if not report.ok:
        prepared.summary["rows"] = {"usable": int(len(train))}
        return
    group = prepared.columns.get(groups.ROLE) if groups.has_groups(train) else None
    if group and not groups.check(train, group, report, source.unit, source.name):
        prepared.summary["rows"] = {"usable": int(len(train))}
        return
    prepared.preview = _preview(train, task)
    train, validation = _split(prepared, train, validation, fraction, seed, validation_path)
    if group and validation_path:
        groups.shared_with_training(train, validation, group, report, source.unit, Path(validation_path).name)
    elif group and prepared.summary["validation"]["source"] == "split":  # a validation folder is as given
        prepared.detection.append(groups.describe(train, validation, group, source.unit))
    if source.unit == "row":  # texts; images have no loose form to compare (see core/engine/holds_up.py)
        checks.near_copies(train, validation, report, source.unit,
                           Path(validation_path).name if validation_path else "the validation split")
    if regression.is_regression(task):
        regression.check_validation_size(len(validation), report, source.name)
    else:
        sanity.check_validation_size(task, len(validation), len(prepared.labels or []), report, source.name)
    _statistics(prepared, train, validation, tokenizer, max_length, seed, source)
    prepared.train = _dataset(train, task, prepared.labels)
    prepared.validation = _dataset(validation, task, prepared.labels)
    if test is not None and len(test):
        prepared.test = _dataset(test.reset_index(drop=True), task, prepared.labels)
        prepared.summary["rows"]["test"] = int(len(test))


def _checked_rows(prepared, source: Source, validation_path, context):
    """Training, validation (None: split later) and test rows, with duplicates, leakage and classes checked."""
    report, task = prepared.report, prepared.task
    train, given = _given_splits(source, prepared, validation_path)
    train = checks.drop_duplicates(train, report, source.unit, source.name).reset_index(drop=True)
    classes = task != "chat" and not regression.is_regression(task)
    if classes:
        checks.conflicting_labels(train, train["_leak"], report, source.unit, source.name)
    validation = given.get("validation")
    if validation_path:
        validation = _validation_rows(prepared, source, train, Path(validation_path), context)
    elif validation is not None:
        validation = _held_out(train, validation, report, source, "validation")
    elif len(train) < 2:
        report.error("too_few_rows", f"{source.name} has only {len(train)} usable row(s).",
                     "Add more examples: a few dozen at the very least.")
    test = _held_out(train, given["test"], report, source, "test") if "test" in given else None
    if classes:
        prepared.labels = natural_sorted(train["label_name"])
    errors = len(report.errors)
    sanity.check_understanding(task, train, prepared.labels, prepared.columns, report, source.name)
    if regression.is_regression(task) and len(train):
        regression.check_targets(train, report, source.name)
    if classes:
        if len(report.errors) == errors:  # a misreading explains small classes better than "add examples"
            checks.check_classes(train["label_name"], train["_row"], report, source.unit)
        validation = _drop_unknown_labels(validation, prepared.labels, report) if validation is not None else None
        test = _drop_unknown_labels(test, prepared.labels, report, "test") if test is not None else None
    return train, validation, test


def _split(prepared, train, validation, fraction, seed, validation_path):
    """Training and validation rows: as given (file or folder), or a seeded split stratified by class."""
    if validation is None:
        fraction = fraction or default_fraction(len(train))
        ids = regression.value_bins(train["target"]) if regression.is_regression(prepared.task) \
            else _label_ids(train, prepared.labels)
        grouped = groups.has_groups(train)
        train_pos, val_pos = groups.split_indices(train["_group"].to_numpy(), fraction, seed, ids) if grouped \
            else split_indices(len(train), fraction, seed, ids)
        train, validation = train.iloc[train_pos], train.iloc[val_pos]
        prepared.summary["validation"] = {"source": "split", "fraction": round(fraction, 4), "seed": seed,
                                          **({"group": prepared.columns.get(groups.ROLE)} if grouped else {})}
    elif validation_path:
        prepared.summary["validation"] = {"source": "file", "path": str(validation_path)}
    else:
        prepared.summary["validation"] = {"source": "folder"}
    return train.reset_index(drop=True), validation.reset_index(drop=True)


def _given_splits(source: Source, prepared, validation_path) -> tuple[pd.DataFrame, dict]:
    """Training rows, and the validation/test rows the data's own split folders give."""
    rows = source.rows
    if "_split" not in rows or (rows["_split"] == "train").all():
        return rows, {}
    counts = rows["_split"].value_counts()
    given = {split: rows[rows["_split"] == split] for split in ("validation", "test") if split in counts}
    train = rows[rows["_split"] == "train"]
    said = ", ".join(f"{split} {int(counts.get(split, 0))}" for split in ("train", "validation", "test")
                     if split in counts)
    prepared.detection.append(f"The split folders are used as given ({said} {source.unit}s).")
    if "test" in given:
        prepared.detection.append("The test folder is kept apart as a held-out test set (never used to train or "
                                  "to choose settings).")
    if validation_path and "validation" in given:
        bad = given.pop("validation")["_row"].tolist()
        prepared.report.warn("validation_folder_ignored", f"{source.name}: the validation folder "
                             f"({len(bad)} {source.unit}s) was not used, because a separate validation path was "
                             "given.", "Leave the validation path empty to use the folder.", rows=bad)
    if train.empty:
        prepared.report.error("no_train_split", f"{source.name} has {' and '.join(given)} folders but no train "
                              "folder.", "Put the training images in a folder called 'train' next to them, one "
                              "subfolder per class.")
    return train, given


def _held_out(train, rows, report, source, split) -> pd.DataFrame:
    rows = checks.drop_duplicates(rows, report, source.unit, f"{source.name} ({split})")
    return checks.drop_leakage(train, rows, report, source.unit, source.name, split).reset_index(drop=True)


def _validation_rows(prepared, source: Source, train: pd.DataFrame, path: Path, context) -> pd.DataFrame | None:
    report = prepared.report
    columns = None if prepared.task == "image-classification" else prepared.columns  # same columns as training
    other = load_source(path, report, context.limits, prepared.task, columns, context.unpack(path), None,
                        context.special_tokens, optional=(groups.ROLE,))
    if other is None or other.rows.empty:
        if report.ok:
            report.error("no_rows", f"The validation file {path.name} has no usable rows.", "Fill it in.")
        return None
    prepared.detection.append(f"Validation rows come from {path.name} ({len(other.rows)} rows).")
    rows = checks.drop_duplicates(other.rows, report, other.unit, other.name)
    return checks.drop_leakage(train, rows, report, other.unit, other.name)


def _drop_unknown_labels(rows: pd.DataFrame, labels: list[str], report: DataReport,
                         split: str = "validation") -> pd.DataFrame:
    unknown = ~rows["label_name"].isin(labels)
    if unknown.any():
        names = sorted(set(rows["label_name"][unknown]))
        bad = rows["_row"][unknown].tolist()
        report.count_dropped(f"unknown_{split}_label", len(bad))
        report.warn(f"unknown_{split}_label", f"The {split} data has label(s) {', '.join(map(repr, names))} "
                    f"that never occur in training ({describe_rows(bad)}); those rows were dropped.",
                    "Use the same class names in both.", rows=bad)
    return rows[~unknown.to_numpy()]


def _label_ids(rows: pd.DataFrame, labels: list[str] | None) -> np.ndarray | None:
    if labels is None:
        return None
    return rows["label_name"].map({name: i for i, name in enumerate(labels)}).to_numpy(dtype=np.int64)


def _statistics(prepared, train, validation, tokenizer, max_length, seed, source: Source) -> None:
    summary, task = prepared.summary, prepared.task
    summary["rows"] = {"read": int(source.read), "train": int(len(train)), "validation": int(len(validation))}
    if prepared.labels is not None:
        summary["classes"] = class_table(prepared.labels, _label_ids(train, prepared.labels),
                                         _label_ids(validation, prepared.labels))
        summary["class_count"] = len(prepared.labels)
    if task == "chat":
        example = train["messages"].iloc[0]
        summary["example"] = {"messages": example}
        summary["turns"] = {"mean": round(float(train["messages"].map(len).mean()), 2)}
    elif task == "text-classification":
        summary["example"] = {"text": train["text"].iloc[0], "label": train["label_name"].iloc[0]}
    if regression.is_regression(task):
        summary["target"] = regression.summary(train, validation, prepared.columns.get("target", "target"))
        if task == "text-regression":
            summary["example"] = {"text": train["text"].iloc[0], "target": float(train["target"].iloc[0])}
    if tokenizer is None or task in ("image-classification", "image-regression"):
        return
    items = train["messages"].tolist() if task == "chat" else train["text"].tolist()
    lengths, positions, templated = token_lengths(tokenizer, task, items, seed)
    summary["token_lengths"] = length_summary(lengths, len(items))
    if task == "chat":
        rendered, _ = render_chat(tokenizer, [items[0]])
        summary["example"]["rendered"] = rendered[0]
        summary["example"]["chat_template"] = templated
        if not templated:
            prepared.detection.append("The tokenizer has no chat template; lengths use plain 'role: text' lines.")
    if max_length:
        _truncation(prepared, lengths, train["_row"].to_numpy()[positions], len(items), max_length, source)


def _truncation(prepared, lengths, rows, total, max_length, source: Source) -> None:
    over = lengths > max_length
    sampled = len(lengths) < total
    count = int(round(over.mean() * total)) if sampled else int(over.sum())
    prepared.summary["truncated"] = {"max_length": int(max_length), "count": count, "estimated": sampled}
    if count:
        about = f"about {count:,} (estimated from {len(lengths):,} sampled rows)" if sampled else f"{count:,}"
        shown = rows[over].tolist()
        what = "after the chat template is applied " if prepared.task == "chat" else ""
        prepared.report.warn("too_long", f"{about} training examples are longer than {max_length} tokens "
                             f"{what}and would be cut short, e.g. {describe_rows(shown, source.unit)}.",
                             f"Raise the max length (the longest is {int(lengths.max())} tokens) or shorten "
                             "those examples.", rows=shown)


def _dataset(rows: pd.DataFrame, task: str, labels):
    """A ``datasets.Dataset`` built straight from Arrow, fingerprinted from the row hashes we already have
    (letting ``datasets`` fingerprint it pickles the whole table: a second per 100k rows)."""
    import datasets  # heavy; imported where used
    import pyarrow as pa

    digest = hashlib.sha256("\x1e".join(rows["_key"].tolist()).encode("utf-8", "surrogatepass"))
    digest.update(f"{task}|{labels}".encode())
    if task == "chat":
        features = datasets.Features({"messages": [{"role": datasets.Value("string"),
                                                    "content": datasets.Value("string")}]})
        columns = {"messages": rows["messages"].tolist()}
    elif regression.is_regression(task):
        key = "text" if task == "text-regression" else "image"
        features = datasets.Features({key: datasets.Value("string"), "target": datasets.Value("float64")})
        columns = {key: rows[key].tolist(), "target": rows["target"].to_numpy(dtype=np.float64)}
    else:
        key = "text" if task == "text-classification" else "image"
        features = datasets.Features({key: datasets.Value("string"), "label": datasets.ClassLabel(names=labels)})
        columns = {key: rows[key].tolist(), "label": _label_ids(rows, labels)}
    if groups.has_groups(rows):  # the search's folds keep each group in one fold (core/data/groups.py)
        features[groups.ROLE] = datasets.Value("string")
        columns[groups.ROLE] = rows["_group"].tolist()
        digest.update("\x1e".join(columns[groups.ROLE]).encode("utf-8", "surrogatepass"))
    schema = features.arrow_schema
    table = pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in columns.items()}, schema=schema)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features),
                            fingerprint=digest.hexdigest()[:16])


def _preview(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    head = rows.head(PREVIEW_ROWS)
    if task == "chat":
        def first(turns, role):
            return next((t["content"] for t in turns if t["role"] == role), "")
        out = {"row": head["_row"].tolist(),
               "system": [first(t, "system") for t in head["messages"]],
               "user": [first(t, "user") for t in head["messages"]],
               "assistant": [first(t, "assistant") for t in head["messages"]],
               "turns": [len(t) for t in head["messages"]]}
        frame = pd.DataFrame(out)
        return frame.drop(columns="system") if not frame["system"].str.len().any() else frame
    key = "text" if task in ("text-classification", "text-regression") else "image"
    if regression.is_regression(task):
        return pd.DataFrame({"row": head["_row"].tolist(), key: head[key].tolist(), "target": head["target"].tolist()})
    return pd.DataFrame({"row": head["_row"].tolist(), key: head[key].tolist(), "label": head["label_name"].tolist()})


def _finish(prepared: PreparedData, source: Source | None, path) -> PreparedData:
    summary = prepared.summary
    for problem in prepared.report.errors:
        role = problem.code.removeprefix("ambiguous_")
        if problem.options and problem.code.startswith("ambiguous_"):
            prepared.candidates[role] = list(problem.options)
        elif problem.options and problem.code == "label_guess":
            prepared.candidates["label"] = list(problem.options)
        elif problem.options and problem.code in ("several_sheets", "unknown_sheet"):
            prepared.candidates["sheet"] = list(problem.options)
    summary.update({"task": prepared.task, "source": str(path), "columns": prepared.columns,
                    "detection": prepared.detection, "labels": prepared.labels,
                    "candidates": prepared.candidates, "dropped": dict(prepared.report.dropped),
                    "merged": [{"class": name, "variants": [[v, c] for v, c in variants]}
                               for name, variants in prepared.report.merged]})
    if source is not None:
        summary.update({"format": source.format, "encoding": source.encoding, "notes": source.notes})
        summary.setdefault("rows", {})["read"] = int(source.read)
    summary["errors"] = [p.to_dict() for p in prepared.report.errors]
    summary["warnings"] = [p.to_dict() for p in prepared.report.warnings]
    summary["ok"] = prepared.report.ok
    if not prepared.report.ok:
        prepared.train = prepared.validation = prepared.test = None
    return prepared

"""The rows to predict, read in chunks: a table (CSV/TSV/JSONL streamed; Excel, JSON and Parquet read whole) or
the images of a folder or zip, with the run's own columns found by name.

Tables are read as the data module reads them (same header cleaning, separators and encodings): a delimited file
whose first lines the streaming reader would understand differently (a title above the header, a ``sep=`` line)
is read whole by ``core.data`` instead. Zips are unpacked into the studio home, never beside the file.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pandas as pd

CHUNK_ROWS = 1024  # rows read at a time from a streamed table


class PredictError(ValueError):
    """The file cannot be predicted on as it is; the message says what to change."""


@dataclass
class Source:
    """A file to predict on.

    Attributes:
        path: the file or folder the user gave.
        kind: "table" or "images".
        columns: the file's column names (tables), or the output's leading columns (images).
        roles: role -> the file's column for it (text, label, prompt, input, system, messages, response).
        total: how many rows (or images) there are, for progress.
        notes: sentences on how it was read.
        root: for images, the folder the relative file names start from.
    """

    path: Path
    kind: str
    columns: list[str]
    roles: dict[str, str]
    total: int
    notes: list[str] = field(default_factory=list)
    root: Path | None = None
    _reader: object = None

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The rows in order, a chunk at a time (the file's own columns; images: ``file``, maybe ``label``,
        and ``_path``, the absolute path)."""
        return self._reader()


# --- tables -------------------------------------------------------------------------------------------------
def open_table(path: Path, wanted: dict[str, str], optional: dict[str, str], limits=None) -> Source:
    """A table file, its columns mapped to roles by name.

    Args:
        path: CSV/TSV/TXT/JSONL (streamed) or Excel/JSON/Parquet (read whole).
        wanted: role -> column name the run trained on, all needed (e.g. text, or prompt).
        optional: role -> column name used when present (label, input, system, response).
        limits: ``core.data.DataLimits``.

    Raises:
        PredictError: unreadable, empty, or a needed column missing.
    """
    from ..data import DataLimits, inspect_columns
    from ..data.readers import DELIMITED, JSONL

    limits = limits or DataLimits()
    columns = _header(path, limits, inspect_columns)
    roles = _roles(path, columns, wanted, optional)
    suffix = path.suffix.lower()
    streamed = _delimited_reader(path, columns, DELIMITED[suffix]) if suffix in DELIMITED else None
    if suffix in JSONL:
        streamed = _jsonl_reader(path, columns)
    if streamed is not None:
        reader, total = streamed
        return Source(path, "table", columns, roles, total, [f"Streaming {path.name} in chunks of {CHUNK_ROWS} rows."],
                      _reader=reader)
    frame = _whole(path, limits)
    return Source(path, "table", list(frame.columns), roles, len(frame), [f"Read {path.name} ({len(frame)} rows)."],
                  _reader=lambda: (frame.iloc[i:i + CHUNK_ROWS] for i in range(0, len(frame), CHUNK_ROWS)))


def _header(path: Path, limits, inspect_columns) -> list[str]:
    if not path.is_file():
        raise PredictError(f"{path} does not exist or is not a file: give a CSV/TSV/Excel/JSON/JSONL/Parquet file, "
                           "or an image folder or zip for an image classifier.")
    columns = inspect_columns(path, limits)
    if not columns:
        _whole(path, limits)  # raises with the data module's own explanation
        raise PredictError(f"{path.name} has no columns.")
    return columns


def _whole(path: Path, limits) -> pd.DataFrame:
    from ..data import DataReport
    from ..data.readers import read_table

    report = DataReport()
    table = read_table(path, report, limits)
    if table is None:
        raise PredictError(" ".join(f"{p.message} {p.fix}" for p in report.errors) or f"{path.name} cannot be read.")
    return table.frame


def _roles(path: Path, columns: list[str], wanted: dict[str, str], optional: dict[str, str]) -> dict[str, str]:
    """Role -> the file's column, matched by name as the data module matches headers (case, spaces, dashes)."""
    from ..data.readers import header_key

    by_key = {header_key(c): c for c in columns}
    roles, missing = {}, []
    for role, name in wanted.items():
        found = by_key.get(header_key(name))
        if found is None:
            missing.append((role, name))
        else:
            roles[role] = found
    if missing:
        need = ", ".join(f"'{name}' (the {role})" for role, name in missing)
        hint = " ".join(f"--column {role}=COLUMN" for role, _ in missing)
        raise PredictError(f"{path.name} has no column {need}, which the model was trained on. Its columns are: "
                           f"{', '.join(columns)}. Rename the column in the file, or say which column to use "
                           f"({hint}).")
    for role, name in optional.items():
        if role not in roles and header_key(name) in by_key:
            roles[role] = by_key[header_key(name)]
    return roles


def _delimited_reader(path: Path, columns: list[str], forced_sep: str | None):
    """(chunk iterator factory, row count) for a delimited file the streaming reader reads exactly as the data
    module does; None when the file needs the data module's whole-file handling."""
    from ..data.readers import MIXED_ENCODING, clean_header, decode, sniff_separator

    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    text, encoding, _ = decode(head if len(head) < (1 << 20) else head[:head.rfind(b"\n") + 1] or head)
    if encoding == MIXED_ENCODING or text.lstrip("\ufeff").lower().startswith(("sep=", '"sep=')):
        return None
    sep = forced_sep or sniff_separator(text)
    first = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, nrows=0, engine="c")
    if [clean_header(c) for c in first.columns] != columns:
        return None  # a title line, duplicate names, blank headers: leave those to the data module

    def options():
        return dict(sep=sep, dtype=str, keep_default_na=False, engine="c", encoding=encoding,
                    encoding_errors="replace", on_bad_lines="skip")

    def chunks():
        for chunk in pd.read_csv(path, chunksize=CHUNK_ROWS, **options()):
            chunk.columns = columns
            yield chunk

    total = sum(len(c) for c in pd.read_csv(path, chunksize=50_000, usecols=[0], **options()))
    return chunks, total


def _jsonl_reader(path: Path, columns: list[str]):
    """(chunk iterator factory, row count) for JSON lines: one object per line, read a chunk at a time."""
    from ..data.readers import clean_header

    def records():
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    value = json.loads(line)
                    yield {clean_header(k): v for k, v in value.items()} if isinstance(value, dict) else {}

    def chunks():
        batch = []
        for record in records():
            batch.append(record)
            if len(batch) == CHUNK_ROWS:
                yield pd.DataFrame(batch, columns=columns)
                batch = []
        if batch:
            yield pd.DataFrame(batch, columns=columns)

    with open(path, "rb") as handle:
        total = sum(1 for line in handle if line.strip())
    return chunks, total


# --- images -------------------------------------------------------------------------------------------------
def open_images(path: Path, home, limits=None) -> Source:
    """The images in a folder (any depth) or a zip of one; the class folder names them when there is one.

    Args:
        path: an image folder or a .zip (unpacked into the studio home's cache, never beside the zip).
        home: the studio home (``core.home.Home``).
        limits: ``core.data.DataLimits``.
    """
    from ..data import DataLimits, DataReport, unpack_folder
    from ..data.images import IMAGE_SUFFIXES

    limits = limits or DataLimits()
    root, notes = Path(path), []
    if root.is_file() and root.suffix.lower() == ".zip":
        from ..data.archive import unpack_zip

        report = DataReport()
        unpacked = unpack_zip(root, report, limits, unpack_folder(home))
        if unpacked is None:
            raise PredictError(" ".join(f"{p.message} {p.fix}" for p in report.errors))
        notes.append(f"Unpacked {root.name} into the studio home.")
        root = unpacked
    if not root.is_dir():
        raise PredictError(f"{path} is not an image folder or a .zip of one: an image classifier predicts on "
                           "images.")
    files = _image_files(root, IMAGE_SUFFIXES)
    if not files:
        raise PredictError(f"{Path(path).name} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    labels = _class_folders(root, IMAGE_SUFFIXES)
    rows = pd.DataFrame({"file": [f.relative_to(root).as_posix() for f in files], "_path": [str(f) for f in files]})
    roles = {}
    if labels:
        rows.insert(1, "label", [labels.get(str(f), "") for f in files])
        roles["label"] = "label"
        notes.append("The class folders give each image's true class, so the accuracy is measured too.")
    return Source(Path(path), "images", [c for c in rows.columns if c != "_path"], roles, len(rows), notes, root,
                  _reader=lambda: (rows.iloc[i:i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)))


def _image_files(root: Path, suffixes) -> list[Path]:
    from ..data.folders import ignored
    from ..data.prepared import natural_key

    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not ignored(d)]
        found += [Path(folder) / n for n in names if not ignored(n) and Path(n).suffix.lower() in suffixes]
    return sorted(found, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def _class_folders(root: Path, suffixes) -> dict[str, str]:
    """Absolute image path -> its class, when the images sit in class folders (as for training)."""
    from ..data.folders import find_layout

    layout = find_layout(root, lambda f: f.suffix.lower() in suffixes)
    out = {}
    for classes in layout.splits.values():
        for name, folder in classes:
            for file in _image_files(folder, suffixes):
                out[str(file)] = name
    return out

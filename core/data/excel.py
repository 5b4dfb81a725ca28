"""Excel workbooks: every sheet that holds anything, title rows above the header, and where formulas are.

Sheets with the same columns (one sheet per month, per region) are read as one table; sheets with different
columns are not merged or guessed between: the reader names them and the user chooses one. Rows above the
header holding a single value (a report title, a date) are recognised as a title, not as column names.

openpyxl reads a formula cell as the value the spreadsheet last saved for it (or nothing, for a workbook
written by a program that never computed it); the formula itself is never evaluated. Which rows hold
formulas is read from the sheet's XML, so the user can be told.
"""
from __future__ import annotations

import html
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

_CELL = re.compile(rb'<c r="[A-Z]+(\d+)"(?:[^>/]|/(?!>))*>(.*?)</c>', re.S)
_SHEET = re.compile(rb'<sheet\b[^>]*?\bname="([^"]*)"[^>]*?\br:id="([^"]*)"', re.S)
_REL = re.compile(rb'<Relationship\b[^>]*?\bId="([^"]*)"[^>]*?\bTarget="([^"]*)"', re.S)
_REL_REVERSED = re.compile(rb'<Relationship\b[^>]*?\bTarget="([^"]*)"[^>]*?\bId="([^"]*)"', re.S)
MAX_XML_BYTES = 256 * 1024**2  # larger sheets are not scanned for formulas
MAX_TITLE_ROWS = 10


@dataclass
class Workbook:
    """What was read from a workbook.

    ``frame``/``rows``: the table (rows are spreadsheet row numbers, or ``"Sheet!row"`` when several sheets
    were joined); ``used``: the sheets read; ``empty``: the empty sheets; ``disagree``: when the non-empty
    sheets have different columns, each sheet with its columns (nothing was read); ``titles``: per sheet, the
    title rows skipped above its header.
    """

    sheet_names: list[str]
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    rows: np.ndarray = field(default_factory=lambda: np.arange(0))
    used: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    disagree: list[tuple[str, list[str]]] = field(default_factory=list)
    titles: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unknown_sheet: bool = False


def read_workbook(path: Path, nrows: int | None, sheet: str | None = None) -> Workbook:
    """Every non-empty sheet of a workbook as one table when their columns agree.

    Args:
        path: an .xlsx/.xlsm file.
        nrows: read only this many rows per sheet.
        sheet: read only this sheet, or these comma-separated sheets (matched ignoring case and spaces).
    """
    book = pd.ExcelFile(path, engine="openpyxl")
    out = Workbook(list(book.sheet_names))
    names = out.sheet_names
    if sheet is not None:
        names = _chosen(names, str(sheet))
        if not names:
            out.unknown_sheet = True
            return out
    frames = {}
    for name in names:
        raw = pd.read_excel(book, sheet_name=name, header=None, dtype=str, keep_default_na=False,
                            nrows=None if nrows is None else nrows + MAX_TITLE_ROWS + 1)
        table = _sheet_table(raw, nrows)
        if table is None:
            out.empty.append(name)
            continue
        frames[name], titles = table
        if titles:
            out.titles[name] = titles
    if not frames:
        return out
    keys = {name: frozenset(str(c).strip().lower() for c in frame.columns) for name, (frame, _) in frames.items()}
    if len(set(keys.values())) > 1:
        out.disagree = [(name, [str(c) for c in frame.columns]) for name, (frame, _) in frames.items()]
        out.titles = {}
        return out
    out.used = list(frames)
    _join(out, frames, path)
    return out


def _chosen(names: list[str], sheet: str) -> list[str]:
    """The sheets ``sheet`` names: one name, or several separated by commas ("Jan,Feb,Mar"); [] if any is
    missing. Names match ignoring case and surrounding spaces."""
    lookup = {n.strip().lower(): n for n in names}
    if sheet.strip().lower() in lookup:
        return [lookup[sheet.strip().lower()]]
    wanted = [part.strip().lower() for part in sheet.split(",") if part.strip()]
    return [lookup[w] for w in wanted] if wanted and all(w in lookup for w in wanted) else []


def _sheet_table(raw: pd.DataFrame, nrows) -> tuple[tuple[pd.DataFrame, np.ndarray], list[int]] | None:
    """A sheet's table below its header, with spreadsheet row numbers, and the title rows above it."""
    if raw.empty:
        return None
    filled = (raw.apply(lambda col: col.astype(str).str.strip()) != "")
    raw = raw.loc[:, filled.any(axis=0).to_numpy()]  # columns that are empty from top to bottom
    filled = filled.loc[:, raw.columns]
    per_row = filled.sum(axis=1).to_numpy()
    if not per_row.any():
        return None
    header = _header_row(per_row)
    titles = [int(i) + 1 for i in range(header) if per_row[i] > 0]
    columns = [str(v).strip() for v in raw.iloc[header].tolist()]
    frame = raw.iloc[header + 1:].copy()
    frame.columns = columns
    frame = frame[filled.iloc[header + 1:].any(axis=1).to_numpy()]
    if nrows is not None:
        frame = frame.head(nrows)
    numbers = frame.index.to_numpy() + 1
    return (frame.reset_index(drop=True), numbers), titles


def _header_row(per_row: np.ndarray) -> int:
    """The first row with two or more values, when only single values (a title) or blanks are above it."""
    if per_row.max() < 2:
        return int(np.flatnonzero(per_row)[0])
    for i, count in enumerate(per_row[:MAX_TITLE_ROWS + 1]):
        if count >= 2:
            return i
    return int(np.flatnonzero(per_row)[0])


def _join(out: Workbook, frames: dict, path: Path) -> None:
    if len(frames) == 1:
        (name, (frame, numbers)), = frames.items()
        out.frame, out.rows = frame, numbers
        out.notes.append(f"Read {path.name} as Excel, sheet '{name}'.")
        return
    order = list(next(iter(frames.values()))[0].columns)
    parts, rows = [], []
    for name, (frame, numbers) in frames.items():
        lookup = {str(c).strip().lower(): c for c in frame.columns}
        parts.append(frame[[lookup[str(c).strip().lower()] for c in order]].set_axis(order, axis=1))
        rows += [f"{name}!{n}" for n in numbers]
    out.frame = pd.concat(parts, ignore_index=True)
    out.rows = np.asarray(rows, dtype=object)
    out.notes.append(f"Read {path.name} as Excel: the sheets {', '.join(map(repr, frames))} have the same columns, "
                     f"so they were joined into one table of {len(out.frame):,} rows.")


def formula_rows(path: Path, sheet: str, limit: int = 200) -> list[int]:
    """Spreadsheet row numbers of the cells in ``sheet`` that hold a formula (at most ``limit``).

    Args:
        path: the workbook.
        sheet: the sheet's name.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            member = _sheet_member(archive, sheet)
            if member is None or archive.getinfo(member).file_size > MAX_XML_BYTES:
                return []
            xml = archive.read(member)
    except (zipfile.BadZipFile, KeyError, OSError):
        return []
    rows: list[int] = []
    for match in _CELL.finditer(xml):
        if b"<f" in match.group(2):
            number = int(match.group(1))
            if not rows or rows[-1] != number:
                rows.append(number)
            if len(rows) >= limit:
                break
    return rows


def _sheet_member(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The XML file inside the workbook that holds the sheet named ``sheet``."""
    workbook = archive.read("xl/workbook.xml")
    rels = archive.read("xl/_rels/workbook.xml.rels")
    targets = {rid: target for rid, target in _REL.findall(rels)}
    targets.update({rid: target for target, rid in _REL_REVERSED.findall(rels)})
    for name, rid in _SHEET.findall(workbook):
        if html.unescape(name.decode("utf-8", "replace")) == sheet and rid in targets:
            target = targets[rid].decode("utf-8", "replace")
            member = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            return member if member in archive.namelist() else None
    return None

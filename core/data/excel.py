"""Excel workbooks: the first sheet that holds anything, and where its formulas are.

openpyxl reads a formula cell as the value the spreadsheet last saved for it (or nothing, for a workbook
written by a program that never computed it); the formula itself is never evaluated. Which rows hold
formulas is read from the sheet's XML, so the user can be told.
"""
from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

_CELL = re.compile(rb'<c r="[A-Z]+(\d+)"(?:[^>/]|/(?!>))*>(.*?)</c>', re.S)
_SHEET = re.compile(rb'<sheet\b[^>]*?\bname="([^"]*)"[^>]*?\br:id="([^"]*)"', re.S)
_REL = re.compile(rb'<Relationship\b[^>]*?\bId="([^"]*)"[^>]*?\bTarget="([^"]*)"', re.S)
_REL_REVERSED = re.compile(rb'<Relationship\b[^>]*?\bTarget="([^"]*)"[^>]*?\bId="([^"]*)"', re.S)
MAX_XML_BYTES = 256 * 1024**2  # larger sheets are not scanned for formulas


def read_workbook(path: Path, nrows: int | None) -> tuple[pd.DataFrame, np.ndarray, list[str], list[str], str | None]:
    """The first non-empty sheet of a workbook.

    Args:
        path: an .xlsx/.xlsm file.
        nrows: read only this many rows.
    Returns the frame, the spreadsheet row number of each frame row (header = 1), notes, the names of the
    empty sheets skipped before it, and the sheet used (None when every sheet is empty).
    """
    book = pd.ExcelFile(path, engine="openpyxl")
    skipped: list[str] = []
    for sheet in book.sheet_names:
        frame = pd.read_excel(book, sheet_name=sheet, dtype=str, keep_default_na=False, nrows=nrows)
        if len(frame.columns) == 0 and frame.empty:
            skipped.append(sheet)
            continue
        frame = frame.dropna(how="all")
        notes = [f"Read {path.name} as Excel, sheet '{sheet}'."]
        if len(book.sheet_names) > 1:
            notes.append(f"The workbook has {len(book.sheet_names)} sheets; only '{sheet}' was used.")
        return frame, frame.index.to_numpy() + 2, notes, skipped, sheet
    return pd.DataFrame(), np.arange(0), [], skipped, None


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

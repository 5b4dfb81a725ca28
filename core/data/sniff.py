"""Telling what a file really holds before trusting its suffix: binary content, mixed encodings, formulas.

An upload named ``.csv`` may be a workbook, a PDF or random bytes; a CSV pasted together from two sources
may be half UTF-8 and half Windows-1252; cells starting with ``=`` are spreadsheet formulas. All of these
are reported in plain words; nothing here ever evaluates what it reads.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

# What the first bytes of a file say it is, for files uploaded with a text suffix.
MAGIC = (
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one too)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (.xls or .doc)"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x80\x04\x95", "a Python pickle"),
    (b"\x80\x05\x95", "a Python pickle"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
)
BINARY_SHARE = 0.05  # more control characters than this in the first 8 KB: not text

# A cell a spreadsheet would run: =SUM(...), =cmd|' /C calc'!A0, @SUM(...), +HYPERLINK(...).
FORMULA = re.compile(r"""^\s*(?:=\s*[A-Za-z_"'(|+\-@$]|[+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*[(|!])""")


def binary_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is (``"a PDF document"``), or None for anything else.

    Args:
        head: the first few dozen bytes of the file.
    """
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    return None


def looks_binary(text: str) -> bool:
    """True when decoded text is mostly control characters: random bytes, not a table.

    Args:
        text: the decoded file (only its first 8,192 characters are looked at).
    """
    sample = text[:8192]
    if not sample:
        return False
    codes = np.frombuffer(sample.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    control = ((codes < 32) & ~np.isin(codes, (9, 10, 12, 13))) | ((codes >= 0x7F) & (codes < 0xA0)) \
        | (codes == 0xFFFD)
    return control.mean() > BINARY_SHARE


def non_utf8_lines(raw: bytes, limit: int = 200) -> list[int]:
    """The 1-based numbers of the lines that are not valid UTF-8 (at most ``limit``).

    Args:
        raw: the file's bytes.
        limit: stop after this many.
    """
    bad = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
            if len(bad) >= limit:
                break
    return bad


def decode_mixed(raw: bytes) -> str | None:
    """Text of a file that is UTF-8 in some lines and Windows-1252 in others; None when it is not mixed.

    A file is mixed when at least one line holds valid multi-byte UTF-8 (accented letters saved as UTF-8)
    and another line does not decode as UTF-8: decoding the whole file one way garbles the other lines.
    """
    lines = raw.split(b"\n")
    utf8_accents = False
    out = []
    for line in lines:
        try:
            text = line.decode("utf-8")
            utf8_accents = utf8_accents or any(b >= 0x80 for b in line)
        except UnicodeDecodeError:
            text = line.decode("cp1252", errors="replace")
        out.append(text)
    if not utf8_accents:
        return None
    return "\n".join(out)


def formula_rows(frame: pd.DataFrame, rows: np.ndarray, limit: int = 200) -> list:
    """Row numbers (as the user sees them) of cells that look like spreadsheet formulas.

    Args:
        frame: the table as read (text cells).
        rows: the user-visible row number of each frame row.
        limit: stop after this many rows.
    """
    hit = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue
        hit |= values.astype(str).str.match(FORMULA).fillna(False).to_numpy(dtype=bool)
    return np.asarray(rows)[hit][:limit].tolist()


def over_limit(size: int, limit: int) -> str:
    """``2.3 GB, over the limit of 2.1 GB`` for messages; exact byte counts when both round alike."""
    if human_size(size) == human_size(limit):
        return f"{size:,} bytes, over the limit of {limit:,} bytes ({human_size(limit)})"
    return f"{human_size(size)}, over the limit of {human_size(limit)}"


def human_size(n: float) -> str:
    """``12.5 MB`` or ``2.1 GB``: sizes in messages, in the units people use."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} KB"

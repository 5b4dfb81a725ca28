"""Reading tables (CSV, TSV, Excel, JSON, JSONL, Parquet) into pandas, with row numbers the user recognises.

Nothing read here is ever executed or unpickled: JSON goes through ``json.loads``, spreadsheets through
openpyxl, Parquet through pyarrow. Every failure becomes a ``Problem`` on the report instead of an exception.
"""
from __future__ import annotations

import csv
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import sniff
from .limits import DataLimits
from .report import DataReport, describe_rows, plural
from .text import as_text

DELIMITED = {".csv": None, ".tsv": "\t", ".tab": "\t", ".txt": None}
EXCEL = {".xlsx", ".xlsm"}
JSON = {".json"}
JSONL = {".jsonl", ".ndjson"}
PARQUET = {".parquet", ".pq"}
TABLE_SUFFIXES = tuple(sorted(set(DELIMITED) | EXCEL | JSON | JSONL | PARQUET))
TEXT_SUFFIXES = set(DELIMITED) | JSON | JSONL
_CANDIDATE_SEPARATORS = (",", "\t", ";", "|")
_SEP_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


@dataclass
class Table:
    """A table as read from one file.

    ``rows`` holds, for every frame row, the number the user sees in their file: the spreadsheet row for
    CSV/TSV/Excel (header = 1), the line for JSONL, the item (1-based) for a JSON list, the row for Parquet.
    """

    frame: pd.DataFrame
    rows: np.ndarray
    unit: str
    format: str
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


def clean_header(name) -> str:
    """A header as the user meant it: without BOM, carriage returns, spaces or surrounding quotes."""
    text = str(name).replace("\ufeff", "").replace("\r", "").replace("\n", " ").strip()
    return text.strip("\"'`").strip()


def header_key(name) -> str:
    """The form headers are matched in: cleaned, lower case, spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", clean_header(name).lower())


def read_table(path: Path, report: DataReport, limits: DataLimits, nrows: int | None = None,
               sheet: str | None = None) -> Table | None:
    """Read one table file; problems go to ``report`` and ``None`` comes back when nothing usable was read.

    Args:
        path: the file; its suffix picks the format.
        report: collects problems.
        limits: ``max_bytes`` and ``max_rows`` apply.
        nrows: read only this many rows (to list columns cheaply).
        sheet: for a workbook, the one sheet to read; every sheet when None.
    """
    suffix = path.suffix.lower()
    if not _check_file(path, report, limits):
        return None
    try:
        if suffix in DELIMITED:
            table = _read_delimited(path, DELIMITED[suffix], report, nrows)
        elif suffix in EXCEL:
            table = _read_excel(path, report, nrows, sheet)
        elif suffix in JSONL:
            table = _read_jsonl(path, report, nrows)
        elif suffix in JSON:
            table = _read_json(path, report)
        elif suffix in PARQUET:
            table = _read_parquet(path)
        elif suffix == ".xls":
            report.error("unsupported_format", f"{path.name} is an old Excel 97 (.xls) file, which is not read here.",
                         "Open it in Excel or LibreOffice and save it as .xlsx or .csv.")
            return None
        else:
            report.error("unsupported_format", f"{path.name}: the format '{suffix or 'without suffix'}' is not "
                         "supported.", f"Use one of {', '.join(TABLE_SUFFIXES)}, an image folder or a .zip of one.")
            return None
    except Exception as exc:  # a corrupt file in any of the formats: report it, never crash the UI
        report.error("unreadable_file", f"{path.name} could not be read as {suffix.lstrip('.')}: {_short(exc)}.",
                     "Check that the file is not damaged and that its suffix matches its content; re-export it.")
        return None
    if table is None:
        return None
    return _finish(table, path, report, limits, nrows)


def _check_file(path: Path, report: DataReport, limits: DataLimits) -> bool:
    if not path.exists():
        report.error("missing_file", f"{path} does not exist.", "Check the path, or upload the file again.")
        return False
    if path.is_dir():
        report.error("not_a_file", f"{path.name} is a folder, not a table file.", "Give a CSV/JSONL/Excel/Parquet "
                     "file, or a folder with one subfolder of images per class.")
        return False
    size = path.stat().st_size
    if size > limits.max_bytes:
        # checked before a single byte is read: a 2 GB upload costs nothing but this stat()
        report.error("file_too_large", f"{path.name} is {sniff.over_limit(size, limits.max_bytes)}.",
                     "Use a smaller sample of the data (split the "
                     "file, or keep the first rows).")
        return False
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if size == 0 or (size < 4096 and not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe")):
        report.error("empty_file", f"{path.name} is empty.", "Upload the file again; it should have a header "
                     "line and at least a few rows.")
        return False
    kind = sniff.binary_kind(head) if path.suffix.lower() in TEXT_SUFFIXES else None
    if kind:
        report.error("wrong_format", f"{path.name} is named like a text table but holds {kind}.",
                     "Upload the file with its real suffix (for a workbook: .xlsx), or export the data as CSV.")
        return False
    return True


def _finish(table: Table, path: Path, report: DataReport, limits: DataLimits, nrows) -> Table | None:
    frame = table.frame
    names = [clean_header(c) for c in frame.columns]
    names = [("" if n.startswith("Unnamed:") else n) for n in names]
    seen: dict[str, int] = {}
    unique = []
    for i, name in enumerate(names):
        name = name or f"column {i + 1}"
        key = name.lower()
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        unique.append(name)
    if any(v > 1 for v in seen.values()):
        dup = [k for k, v in seen.items() if v > 1]
        report.warn("duplicate_header", f"{path.name} has the column name(s) {', '.join(dup)} more than once; "
                    "the copies were numbered.", "Give every column a distinct name.")
    frame.columns = unique
    if table.format in ("csv", "tsv", "xlsx"):
        _drop_repeated_headers(table, path, report)
        _drop_totals(table, path, report)
        frame = table.frame
    if nrows is None and len(frame) > limits.max_rows:
        report.error("too_many_rows", f"{path.name} has {len(frame):,} rows, over the limit of "
                     f"{limits.max_rows:,}.", "Use a smaller sample of the data.")
        return None
    if len(frame.columns) == 0 or (len(frame) == 0 and nrows is None):
        report.error("no_rows", f"{path.name} has a header but no data rows.", "Add rows below the header line.")
        return None
    if nrows is None and table.format != "xlsx":  # workbooks are checked in their XML (_read_excel)
        _warn_formulas(sniff.formula_rows(frame, table.rows), path, report, table.unit)
    return table


# Second header rows survey tools write under the questions (SurveyMonkey; Qualtrics adds two).
SURVEY_SUBHEADER = re.compile(r'^(Response|Open-Ended Response|\{"ImportId":.*\})$')


def _drop_survey_subheaders(table: Table, path: Path, report: DataReport) -> None:
    frame = table.frame
    head = frame.head(3).astype(str).apply(lambda col: col.str.strip().str.match(SURVEY_SUBHEADER))
    rows = head.any(axis=1).to_numpy()
    if not rows.any():
        return
    extra = np.zeros(len(frame), dtype=bool)
    extra[: len(rows)] = rows
    extra[: int(np.flatnonzero(rows).max()) + 1] = True  # the question-text row above the ImportId row too
    bad = table.rows[extra].tolist()
    report.count_dropped("repeated_header", len(bad))
    report.warn("survey_header", f"{path.name}: {describe_rows(bad, table.unit)} under the column names "
                f"{plural(bad, 'is a second header row', 'are extra header rows')} (as survey tools write them), "
                "not answers; dropped.", "Nothing to do; or export without the extra header rows.", rows=bad)
    table.frame = frame[~extra].reset_index(drop=True)
    table.rows = table.rows[~extra]


_TOTAL = re.compile(r"^\s*(grand\s+|sub)?(total|totals|sum|summe|totaal|totale)\s*:?\s*$", re.IGNORECASE)


def _drop_totals(table: Table, path: Path, report: DataReport) -> None:
    """A 'Total' row under a spreadsheet table (a count or sum) is not an example: drop it."""
    frame = table.frame
    if len(frame) < 3 or len(frame.columns) < 2:
        return
    tail = frame.tail(3).iloc[:, :2].astype(str)
    hit = tail.apply(lambda col: col.str.match(_TOTAL)).any(axis=1).to_numpy()
    if not hit.any():
        return
    drop = np.zeros(len(frame), dtype=bool)
    drop[len(frame) - len(hit):] = hit
    bad = table.rows[drop].tolist()
    report.count_dropped("totals_row", len(bad))
    report.warn("totals_row", f"{path.name}: {describe_rows(bad, table.unit)} at the bottom "
                f"{plural(bad, 'is a total', 'are totals')}, not an example; dropped.",
                "Nothing to do; or delete the totals before exporting.", rows=bad)
    table.frame = frame[~drop].reset_index(drop=True)
    table.rows = table.rows[~drop]


def _drop_repeated_headers(table: Table, path: Path, report: DataReport) -> None:
    """Rows that repeat the column names (files pasted together, exports in pages) are not data: drop them."""
    frame = table.frame
    if frame.empty or len(frame.columns) < 2:
        return
    _drop_survey_subheaders(table, path, report)
    frame = table.frame
    hits = np.zeros(len(frame), dtype=np.int32)
    for col in frame.columns:
        values = frame[col]
        if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue
        # compare only cells about as long as the header: one cheap pass instead of three string copies
        near = values.astype(str).str.len().between(len(str(col)), len(str(col)) + 4).to_numpy(dtype=bool)
        if near.any():
            cells = values[near].astype(str).str.strip().str.strip("\"'").str.lower()
            hits[near] += (cells == str(col).lower()).to_numpy(dtype=np.int32)
    repeated = hits >= max(2, int(np.ceil(0.8 * len(frame.columns))))
    if not repeated.any():
        return
    bad = table.rows[repeated].tolist()
    report.count_dropped("repeated_header", len(bad))
    report.warn("repeated_header", f"{path.name}: {describe_rows(bad, table.unit)} {plural(bad, 'repeats', 'repeat')} "
                "the column names (several exports pasted together?); "
                f"{plural(bad, 'it was', 'they were')} dropped.", "Delete the repeated header lines from the file.",
                rows=bad)
    table.frame = frame[~repeated].reset_index(drop=True)
    table.rows = table.rows[~repeated]


def _warn_formulas(rows: list, path: Path, report: DataReport, unit: str) -> None:
    if not rows:
        return
    report.warn("formula_cells", f"{path.name}: {describe_rows(rows, unit)} {plural(rows, 'holds', 'hold')} "
                "spreadsheet formulas (cells starting with '='); they were read as plain text and never run.",
                "Replace formulas with their values (copy, then Paste Special > Values) before uploading; "
                "such cells can run commands when the data is opened in a spreadsheet again.", rows=rows)


# --- delimited text -----------------------------------------------------------------------------------

MIXED_ENCODING = "utf-8 + windows-1252"


def decode(raw: bytes) -> tuple[str, str, bool]:
    """Text, the encoding used, and whether it was a guess (Latin-1 / Windows-1252 fallback)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig", False
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16", False
    head = raw[:2000]
    if len(head) > 3 and head.count(b"\x00") > len(head) // 4:
        # UTF-16 without a byte order mark: the NULs sit in the high bytes of ASCII characters
        enc = "utf-16-le" if head[1::2].count(b"\x00") > head[0::2].count(b"\x00") else "utf-16-be"
        return raw.decode(enc), enc, False
    try:
        return raw.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        pass
    mixed = sniff.decode_mixed(raw)
    if mixed is not None:
        return mixed, MIXED_ENCODING, True
    try:
        return raw.decode("cp1252"), "windows-1252", True
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1", True


def sniff_separator(text: str) -> str:
    """The separator that splits the first lines into the same number of fields most consistently."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    best, best_score = ",", (0.0, 0)
    for sep in _CANDIDATE_SEPARATORS:
        try:
            lines = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if r][:50]
        except csv.Error:
            continue
        if not lines or len(lines[0]) < 2:
            continue
        width = len(lines[0])
        score = (sum(len(r) == width for r in lines) / len(lines), width)
        if score[0] >= 0.8 and score > best_score:
            best, best_score = sep, score
    return best


def _read_delimited(path: Path, forced_sep: str | None, report: DataReport, nrows) -> Table | None:
    raw = path.read_bytes()
    text, encoding, guessed = decode(raw)
    # the C parser reads UTF-8 bytes natively; handing it text makes pandas encode it all again
    buffer = io.BytesIO(raw) if encoding == "utf-8" and b"\x00" not in raw else None
    del raw
    text = text.replace("\x00", "") if buffer is None else text
    if not text.strip():
        report.error("empty_file", f"{path.name} is empty.", "Upload the file again with a header and rows.")
        return None
    if sniff.looks_binary(text):
        report.error("binary_file", f"{path.name} holds binary data, not text: it is not a "
                     f"{path.suffix.lstrip('.').upper()} table.", "Export the data as CSV (UTF-8) from the "
                     "program that made it, or upload the original workbook (.xlsx).")
        return None
    sep, skip, notes = _preamble(text, forced_sep, path, report)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(buffer or io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                                on_bad_lines="warn", nrows=nrows, engine="c", skiprows=skip or None)
        except pd.errors.EmptyDataError:
            report.error("empty_file", f"{path.name} has no header and no rows.", "Upload the file again.")
            return None
        except pd.errors.ParserError as exc:
            report.error("unreadable_file", f"{path.name} could not be split into columns: {_short(exc)}.",
                         "Look for an unclosed quote (\") near that row, or re-export the file as CSV.")
            return None
    bad = [n + skip for n in _skipped_lines(caught)]
    report.count_dropped("bad_lines", len(bad))
    if bad:
        report.warn("bad_lines", f"{path.name}: {describe_rows(bad, 'line')} had a different number of fields "
                    "than the header and were skipped.", "Quote cells that contain the separator "
                    f"({_SEP_NAMES.get(sep, sep)}), or fix those lines.", rows=bad)
    if nrows is None and _swallowed(frame, sep, path, report):
        return None
    fmt = "tsv" if sep == "\t" else "csv"
    notes.insert(0, f"Read {path.name} as {fmt.upper()} ({_SEP_NAMES.get(sep, sep)}-separated, {encoding}).")
    if guessed:
        _warn_encoding(path, encoding, report)
    if nrows is None:
        rows = _csv_row_numbers(text, len(frame), bad, skip)
    else:
        rows = np.arange(2 + skip, len(frame) + 2 + skip)
    return Table(frame, rows, "row", fmt, encoding, notes)


def _preamble(text: str, forced_sep: str | None, path: Path, report: DataReport) -> tuple[str, int, list[str]]:
    """The separator, how many lines come before the header (Excel's ``sep=;`` line, title lines), and notes."""
    notes = []
    declared = _declared_separator(text)
    if declared:
        notes.append(f"The first line 'sep={declared}' (written by Excel) names the separator; it was honoured.")
    skip = 1 if declared else 0
    body = _after_lines(text, skip + _blank_lead(text, skip))  # sniffed below any title lines
    sep = declared or _separator(body, forced_sep, path, report)
    titles = _title_lines(text, skip, sep)
    if titles:
        shown = [line.strip().strip(sep).strip() for line in text.split("\n", skip + titles)[skip:skip + titles]]
        shown = [line for line in shown if line] or ["(blank)"]
        report.warn("title_rows", f"{path.name}: the first {plural(range(titles), 'line', f'{titles} lines')} "
                    f"({', '.join(repr(t[:60]) for t in shown[:3])}) {plural(range(titles), 'is', 'are')} a title "
                    "above the column names, so the table starts below.", "Nothing to do if the columns below are "
                    "right; otherwise delete the title lines so the first line holds the column names.",
                    rows=list(range(skip + 1, skip + titles + 1)))
    return sep, skip + titles, notes


def _swallowed(frame: pd.DataFrame, sep: str, path: Path, report: DataReport) -> bool:
    """A cell that opens with a quote and never closes swallows the lines below it into one cell: rows vanish
    without a parse error. Such a cell holds several lines that each end like a whole row (a separator, then a
    value of the last column); report it rather than train on merged rows."""
    if frame.empty or len(frame.columns) < 2:
        return False
    endings = set(as_text(frame[frame.columns[-1]].head(20000)).str.strip()) - {""}
    for col in frame.columns:
        values = frame[col]
        if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue
        text = values.astype(str)
        multi = text[text.str.contains("\n", regex=False).to_numpy(dtype=bool)]
        multi = multi[multi.str.count("\n") >= 2]
        for position, cell in multi.astype(str).items():
            rows = [line for line in cell.split("\n")[1:] if sep in line and line.rsplit(sep, 1)[1].strip() in endings]
            if len(rows) >= 2:
                first = cell.split("\n", 1)[0][:60]
                report.error("unbalanced_quote", f"{path.name}: a cell in column '{col}' (starting {first!r}) opens "
                             f"with a double quote that never closes, so it swallowed {len(rows)} or more lines that "
                             "look like rows of their own; the rows were not counted.", "Remove that stray quote "
                             "(or write it twice: \"\") and save the file again; in a spreadsheet, re-export as CSV.")
                return True
    return False


_SEP_LINE = re.compile(r"^\ufeff?\s*\"?sep=(.)\"?\s*$", re.IGNORECASE)


def _declared_separator(text: str) -> str | None:
    """The separator Excel names in a first line ``sep=;`` (it writes one for other locales' lists)."""
    first = text[:20].split("\n", 1)[0].rstrip("\r")
    match = _SEP_LINE.match(first)
    return match.group(1) if match else None


def _after_lines(text: str, count: int) -> str:
    return text.split("\n", count)[-1] if count else text


def _blank_lead(text: str, skip: int) -> int:
    """How many lines after the first ``skip`` hold at most one value under every separator (titles, blanks)."""
    lines = text[:65536].split("\n")[skip:skip + MAX_TITLE_LINES + 1]
    count = 0
    for line in lines[:-1]:
        if max(_filled(line, sep) for sep in _CANDIDATE_SEPARATORS) > 1:
            break
        count += 1
    return count if count < len(lines) - 1 else 0


MAX_TITLE_LINES = 10


def _title_lines(text: str, skip: int, sep: str) -> int:
    """Lines above the header that are a title (one value, or a few values in a line much narrower than the
    table), counted after the first ``skip`` lines; 0 when the first line is the header."""
    lines = [line.rstrip("\r") for line in text[:65536].split("\n")[skip:skip + 60]]
    if len(lines) < 3:
        return 0
    widths = [_fields(line, sep) for line in lines]
    body = [w for w in widths[MAX_TITLE_LINES:] or widths[1:] if w > 1]
    if not body:
        return 0
    width = max(set(body), key=body.count)
    for i in range(min(MAX_TITLE_LINES, len(lines) - 1)):
        line = lines[i]
        if widths[i] == width and _filled(line, sep) >= 2:
            return i
        filled = _filled(line, sep)
        if not (filled <= 1 or (widths[i] < width and filled <= 2 and widths[i] * 2 <= width)):
            return 0
    return 0


def _fields(line: str, sep: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=sep), []))
    except csv.Error:
        return 0


def _filled(line: str, sep: str) -> int:
    try:
        return sum(bool(f.strip()) for f in next(csv.reader([line], delimiter=sep), []))
    except csv.Error:
        return 0


def _separator(text: str, forced: str | None, path: Path, report: DataReport) -> str:
    """The suffix's separator, unless the header plainly uses another one (a comma file saved as .tsv)."""
    if forced is None:
        return sniff_separator(text)
    header = text.split("\n", 1)[0]
    if forced in header:
        return forced
    found = sniff_separator(text)
    if found != forced and found in header:
        report.warn("separator_mismatch", f"{path.name} is named {path.suffix} ({_SEP_NAMES.get(forced, forced)}-"
                    f"separated) but its lines are separated by {_SEP_NAMES.get(found, found)}s; it was read that "
                    "way.", "Rename the file to match its content (.csv for commas, .tsv for tabs).")
        return found
    return forced


def _warn_encoding(path: Path, encoding: str, report: DataReport) -> None:
    if encoding == MIXED_ENCODING:
        lines = sniff.non_utf8_lines(path.read_bytes())
        report.warn("mixed_encoding", f"{path.name} mixes text encodings: {describe_rows(lines, 'line')} "
                    f"{plural(lines, 'is', 'are')} not UTF-8 while the rest is; "
                    f"{plural(lines, 'it was', 'they were')} read as Windows-1252, so check "
                    f"{plural(lines, 'its', 'their')} accented letters.", "Save the whole file as UTF-8 (in Excel: "
                    "'CSV UTF-8'); the file was probably pasted together from two sources.", rows=lines)
        return
    report.warn("encoding", f"{path.name} is not valid UTF-8; it was read as {encoding}, so accented "
                "letters may look wrong.", "Save the file as UTF-8 (in Excel: 'CSV UTF-8').")


def _skipped_lines(caught) -> list[int]:
    out = []
    for w in caught:
        out += [int(n) for n in re.findall(r"Skipping line (\d+)", str(w.message))]
    return sorted(out)


def _csv_row_numbers(text: str, n: int, bad: list[int], skip: int = 0) -> np.ndarray:
    """Physical line numbers of the data rows, when blank or skipped lines make them differ from index + 2."""
    first = skip + 2
    if not bad and "\n\n" not in text and "\n\r\n" not in text:
        return np.arange(first, n + first)
    lines = text.split("\n")
    drop = set(bad)
    numbers = [i + 1 for i, line in enumerate(lines[skip + 1:], start=skip + 1) if line.strip() and (i + 1) not in drop]
    if len(numbers) == n:
        return np.asarray(numbers)
    return np.arange(first, n + first)  # quoted cells span lines: fall back to record numbers


# --- other formats -------------------------------------------------------------------------------------

def _read_excel(path: Path, report: DataReport, nrows, sheet: str | None) -> Table | None:
    from . import excel

    book = excel.read_workbook(path, nrows, sheet)
    if book.unknown_sheet:
        report.error("unknown_sheet", f"{path.name} has no sheet called '{sheet}'; its sheets are "
                     f"{', '.join(map(repr, book.sheet_names))}.", "Choose one of the listed sheets.",
                     options=book.sheet_names)
        return None
    if book.disagree:
        _report_sheets(book.disagree, path, report)
        return None
    if not book.used:
        report.error("empty_sheet", f"{path.name}: every sheet ({', '.join(map(repr, book.empty))}) is empty.",
                     "Put a header line and the rows in the first sheet, save, and upload again.")
        return None
    if book.empty and len(book.used) == 1:
        report.warn("empty_sheet", f"{path.name}: the sheet(s) {', '.join(map(repr, book.empty))} are empty, so the "
                    f"sheet '{book.used[0]}' was used.", "Delete the empty sheets, or move the data to the first one.")
    for name, titles in book.titles.items():
        where = f"sheet '{name}', " if len(book.used) > 1 else ""
        report.warn("title_rows", f"{path.name}: {where}{describe_rows(titles, 'row')} above the column names "
                    f"{plural(titles, 'is a title', 'are a title')}, so the table starts below.",
                    "Nothing to do if the columns below are right; otherwise delete the title rows so the first "
                    "row holds the column names.", rows=titles)
    if nrows is None:
        for name in book.used:
            rows = excel.formula_rows(path, name)
            if len(book.used) > 1:
                rows = [f"{name}!{r}" for r in rows]
            _warn_formulas(rows, path, report, "row")
    return Table(book.frame, book.rows, "row", "xlsx", None, book.notes)


def _report_sheets(sheets: list[tuple[str, list[str]]], path: Path, report: DataReport) -> None:
    """Sheets with different columns: list them grouped by their columns and ask which to use."""
    groups: dict[tuple, list[str]] = {}
    for name, cols in sheets:
        groups.setdefault(tuple(sorted(c.strip().lower() for c in cols)), []).append(name)
    columns = dict(sheets)
    listed = "; ".join(f"{', '.join(map(repr, names))} ({', '.join(map(repr, columns[names[0]][:6]))}"
                       f"{', ...' if len(columns[names[0]]) > 6 else ''})" for names in groups.values())
    biggest = max(groups.values(), key=len)
    choice = ",".join(biggest)
    report.error("several_sheets", f"{path.name} has sheets with different columns: {listed}. Which holds the "
                 "training data?", "Choose the sheet: in the page, pick it in the sheet list; on the command "
                 f"line, add it to the path after '#' (e.g. --set \"data.path={path.name}#{choice}\"; sheets with "
                 "the same columns can be joined by listing them with commas); or give every sheet the same "
                 "columns to use them all as one table.", options=[name for name, _ in sheets])


def _read_jsonl(path: Path, report: DataReport, nrows) -> Table | None:
    text, encoding, guessed = decode(path.read_bytes())
    if guessed:
        _warn_encoding(path, encoding, report)
    records, numbers, bad, not_objects = [], [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if not isinstance(item, dict):
            not_objects.append(number)
            continue
        records.append(item)
        numbers.append(number)
        if nrows is not None and len(records) >= nrows:
            break
    report.count_dropped("bad_json_line", len(bad) + len(not_objects))
    if bad:
        report.warn("bad_json_line", f"{path.name}: {describe_rows(bad, 'line')} "
                    f"{plural(bad, 'is', 'are')} not valid JSON, so skipped.",
                    "Each line must be one complete JSON object, e.g. "
                    '{"prompt": "...", "response": "..."}.', rows=bad)
    if not_objects:
        report.warn("bad_json_line", f"{path.name}: {describe_rows(not_objects, 'line')} "
                    f"{plural(not_objects, 'is', 'are')} JSON but not an object, so skipped.",
                    "Write each row as an object with named fields.", rows=not_objects)
    if not records:
        report.error("no_rows", f"{path.name} has no usable JSON object lines.",
                     'Write one JSON object per line, e.g. {"text": "...", "label": "..."}.')
        return None
    frame = pd.DataFrame(records, dtype=object)
    return Table(frame, np.asarray(numbers), "line", "jsonl", encoding, [f"Read {path.name} as JSON Lines."])


def _read_json(path: Path, report: DataReport) -> Table | None:
    text, encoding, _ = decode(path.read_bytes())
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines[:5]):
            table = _read_jsonl(path, report, None)  # JSON Lines saved as .json: read it as such
            if table is not None:
                table.notes.append(f"{path.name} holds one JSON object per line, so it was read as JSON Lines.")
            return table
        else:
            report.error("unreadable_file", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}.", "Fix the JSON there (a missing comma or quote is common).")
        return None
    notes = [f"Read {path.name} as JSON."]
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        if len(lists) == 1 and "messages" not in data and "conversations" not in data:
            key = next(iter(lists))
            notes.append(f"Used the list of records under the key '{key}'.")
            data = lists[key]
        else:
            data = [data]
    if not isinstance(data, list) or not data:
        report.error("json_shape", f"{path.name} does not hold a list of records.",
                     'Write a JSON list of objects: [{"text": "...", "label": "..."}, ...].')
        return None
    not_objects = [i for i, item in enumerate(data, start=1) if not isinstance(item, dict)]
    if not_objects:
        report.warn("json_shape", f"{path.name}: {describe_rows(not_objects, 'item')} of the list "
                    "not an object, so skipped.", "Write every item as an object with named fields.",
                    rows=not_objects)
    numbers = [i for i, item in enumerate(data, start=1) if isinstance(item, dict)]
    if not numbers:
        report.error("json_shape", f"{path.name} holds no JSON objects.", "Write a list of objects.")
        return None
    frame = pd.DataFrame([data[i - 1] for i in numbers], dtype=object)
    return Table(frame, np.asarray(numbers), "item", "json", encoding, notes)


def _read_parquet(path: Path) -> Table:
    frame = pd.read_parquet(path)
    notes = [f"Read {path.name} as Parquet."]
    for column, names in _class_names(path).items():
        if column in frame.columns and pd.api.types.is_integer_dtype(frame[column].dtype):
            lookup = dict(enumerate(names))
            frame[column] = frame[column].map(lambda i: lookup.get(i, i))
            notes.append(f"'{column}' holds class numbers; the file names them ({', '.join(names[:6])}), so the "
                         "names are used.")
    return Table(frame, np.arange(1, len(frame) + 1), "row", "parquet", None, notes)


def _class_names(path: Path) -> dict[str, list[str]]:
    """The class names a Hugging Face datasets Parquet file keeps in its schema for ClassLabel columns."""
    import pyarrow.parquet as pq

    try:
        meta = (pq.read_schema(path).metadata or {}).get(b"huggingface")
        features = json.loads(meta)["info"]["features"] if meta else {}
    except (ValueError, KeyError, TypeError, OSError):
        return {}
    return {name: [str(n) for n in spec["names"]] for name, spec in features.items()
            if isinstance(spec, dict) and spec.get("_type") == "ClassLabel" and spec.get("names")}


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300].rstrip(".")

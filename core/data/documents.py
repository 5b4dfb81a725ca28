"""Documents for domain adaptation: plain text, Markdown, PDF and Word files, one file, a folder or a zip.

The text is extracted here (pypdf for PDF, python-docx for Word, the usual encoding detection for text files),
tidied (line breaks inside PDF paragraphs joined, words hyphenated across lines rejoined, page numbers and the
running headers and footers repeated on most pages dropped) and handed on as one row per document: ``_row``
(the file name as the user sees it), ``document`` (the same), ``text``, ``format``, ``pages`` and the usual
``_key``/``_leak`` (the text itself: the same document twice is a duplicate, and in validation it is leakage).
Files that are not documents are listed and left out; files with no text (a scanned PDF) are said and dropped.
"""
from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd

from .archive import SKIPPED_PARTS, declared_entries, unpack_zip
from .images import IMAGE_SUFFIXES
from .limits import DataLimits
from .readers import decode
from .report import DataReport, describe_rows, plural
from .sniff import over_limit

FORMATS = {".txt": "text", ".text": "text", ".md": "Markdown", ".markdown": "Markdown", ".pdf": "PDF",
           ".docx": "Word"}
NEVER_TABLES = {".md", ".markdown", ".pdf", ".docx", ".text"}  # .txt may also be a table (tab or comma separated)
PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)
REPEATED_ON_PAGES = 0.6  # a line at the top or bottom of this share of pages is a running header or footer
SENTENCE_END = ".!?:;\"')]”’"


def is_documents(path: Path, task: str | None, limits: DataLimits | None = None) -> bool:
    """Whether ``path`` is read as documents: always for the text-completion task; otherwise a Markdown, PDF or
    Word file, a ``.txt`` file of prose (not a table), or a folder or zip holding more documents than images.

    Args:
        path: what the user gave.
        task: the user's task, or None when it is detected.
        limits: a zip declaring more entries than ``max_zip_files`` is not opened here (the image reader refuses
            it from its last bytes).
    """
    if task == "text-completion":
        return True
    if task is not None:
        return False
    suffix = path.suffix.lower()
    if path.is_dir():
        names = [p.name for p in path.rglob("*") if p.is_file()]
    elif suffix == ".zip" and path.is_file():
        declared = declared_entries(path)
        if declared is not None and declared > (limits or DataLimits()).max_zip_files:
            return False
        names = _zip_names(path)
    else:
        return suffix in NEVER_TABLES or (suffix == ".txt" and path.is_file() and _prose(path))
    suffixes = [Path(n).suffix.lower() for n in names if not _skipped(Path(n))]
    # documentation with a few screenshots is documents; photos with a README are images
    return sum(s in FORMATS for s in suffixes) > sum(s in IMAGE_SUFFIXES for s in suffixes)


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError):
        return []  # the image reader reports a broken zip in its own words


def _prose(path: Path) -> bool:
    """A .txt file whose first lines do not share a tab, comma, semicolon or pipe count (so: not a table)."""
    try:
        with open(path, "rb") as handle:
            text, _, _ = decode(handle.read(64 * 1024))
    except OSError:
        return False
    lines = [line for line in text.splitlines() if line.strip()][:20]
    if len(lines) < 2:
        return True
    for sep in ("\t", ",", ";", "|"):
        counts = {line.count(sep) for line in lines[:-1]}  # the last line read may be cut short
        if len(counts) == 1 and counts != {0} and (sep != "," or _short_fields(lines, sep)):
            return False
    return True


def _short_fields(lines: list[str], sep: str) -> bool:
    """Commas in prose come with long stretches of words between them; a table's header has short names."""
    return all(len(field.strip()) <= 40 and len(field.split()) <= 3 for field in lines[0].split(sep))


def _skipped(path: Path) -> bool:
    return any(part.lower() in SKIPPED_PARTS or part.startswith(".") for part in path.parts)


def read_documents(path: Path, report: DataReport, limits: DataLimits, unpack_dir=None) -> pd.DataFrame | None:
    """One row per document with its extracted text; None (with an error) when there is nothing to read.

    Args:
        path: a document file, a folder of them, or a zip of them.
        report: collects problems.
        limits: ``max_bytes`` per file and archive, ``max_zip_files`` documents at most.
        unpack_dir: where a zip is unpacked (a folder in the studio home, or a function giving it).
    """
    if not path.exists():
        report.error("missing_file", f"{path} does not exist.", "Check the path, or upload the file again.")
        return None
    root, files = _files(path, report, limits, unpack_dir)
    if files is None:
        return None
    rows, empty, unreadable = [], [], []
    for file in files:
        shown = file.relative_to(root).as_posix() if root is not None else file.name
        text, pages, problem = extract(file, limits)
        if problem:
            unreadable.append((shown, problem))
        elif not text.strip():
            empty.append(shown)
        else:
            rows.append({"_row": shown, "document": shown, "text": text, "format": FORMATS[file.suffix.lower()],
                         "pages": pages})
    if root is None and not rows:  # one file the user gave: its problem is the error
        _refuse_single(path, empty, unreadable, report)
        return None
    _report_unusable(empty, unreadable, report)
    if not rows:
        if report.ok:
            report.error("no_documents", f"{path.name} holds no document with text in it.", "Upload text, Markdown, "
                         "PDF or Word (.docx) files that contain text (a scanned PDF needs OCR first).")
        return None
    frame = pd.DataFrame(rows)
    frame["_key"] = frame["text"]
    frame["_leak"] = frame["text"]
    return frame


def _files(path: Path, report: DataReport, limits: DataLimits, unpack_dir) -> tuple[Path | None, list | None]:
    """(the folder names are shown relative to, the document files in name order)."""
    if path.is_file() and path.suffix.lower() != ".zip":
        if path.suffix.lower() not in FORMATS:
            report.error("not_a_document", f"{path.name} is not a document the studio reads.",
                         f"Upload {_formats()} files, or a folder or zip of them.")
            return None, None
        return None, [path]
    root = path
    if path.suffix.lower() == ".zip" and path.is_file():
        if unpack_dir is None:
            report.error("no_unpack_folder", f"{path.name} is a zip, but no folder was given to unpack it into.",
                         "Give load_data the studio home (home=...) or an unpack_dir.")
            return None, None
        root = unpack_zip(path, report, limits, unpack_dir)
        if root is None:
            return None, None
    every = sorted((p for p in root.rglob("*") if p.is_file() and not _skipped(p.relative_to(root))),
                   key=lambda p: p.relative_to(root).as_posix().lower())
    files = [p for p in every if p.suffix.lower() in FORMATS]
    others = [p.relative_to(root).as_posix() for p in every if p.suffix.lower() not in FORMATS]
    if others:
        report.count_dropped("not_document", len(others))
        report.warn("not_document", f"{path.name}: {describe_rows(others, 'file')} {plural(others, 'is', 'are')} "
                    f"not {_formats()} and {plural(others, 'was', 'were')} left out.",
                    "Convert them to one of those formats if they belong in the training text.", rows=others)
    if not files:
        report.error("no_documents", f"{path.name} holds no {_formats()} files.",
                     "Put the documents in the folder (or zip), or upload a single document.")
        return None, None
    if len(files) > limits.max_zip_files:
        report.error("too_many_documents", f"{path.name} holds {len(files):,} documents, over the limit of "
                     f"{limits.max_zip_files:,}.", "Upload fewer documents.")
        return None, None
    return root, files


def _formats() -> str:
    return "text (.txt), Markdown (.md), PDF (.pdf) or Word (.docx)"


def _refuse_single(path: Path, empty: list[str], unreadable: list[tuple[str, str]], report: DataReport) -> None:
    if unreadable:
        report.error("unreadable_document", f"{path.name} could not be read: {unreadable[0][1]}.",
                     "Open it and save it again (as PDF, DOCX or plain text), or export its text.")
    else:
        report.error("no_text", f"{path.name} holds no text (a scanned PDF holds only pictures of its pages).",
                     "Run OCR on it (e.g. ocrmypdf) or export the text from the program that made it.")


def _report_unusable(empty: list[str], unreadable: list[tuple[str, str]], report: DataReport) -> None:
    if empty:
        report.count_dropped("no_text", len(empty))
        report.warn("no_text", f"{describe_rows(empty, 'file')} {plural(empty, 'holds', 'hold')} no text and "
                    f"{plural(empty, 'was', 'were')} left out (a scanned PDF holds only pictures of its pages).",
                    "Run OCR on scanned PDFs (e.g. ocrmypdf) or export the text from the program that made them.",
                    rows=empty)
    for shown, problem in unreadable:
        report.count_dropped("unreadable_document", 1)
        report.warn("unreadable_document", f"{shown} could not be read: {problem}; it was left out.",
                    "Open it and save it again (as PDF, DOCX or plain text), or leave it out.", rows=[shown])


def extract(file: Path, limits: DataLimits) -> tuple[str, int | None, str | None]:
    """(tidied text, pages (PDF only), problem or None) of one document file.

    Args:
        file: a file with one of the ``FORMATS`` suffixes.
        limits: ``max_bytes`` caps the file size.
    """
    size = file.stat().st_size
    if size > limits.max_bytes:
        return "", None, f"it is {over_limit(size, limits.max_bytes)}"
    suffix = file.suffix.lower()
    try:
        if suffix == ".pdf":
            pages = _pdf_pages(file)
            if isinstance(pages, str):
                return "", None, pages
            return pdf_text(pages), len(pages), None
        if suffix == ".docx":
            return tidy(_docx_text(file)), None, None
        text, _, _ = decode(file.read_bytes())
        return tidy(text), None, None
    except Exception as exc:  # a damaged file raises whatever its parser raises; the user gets the first line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return "", None, f"it is not a readable {FORMATS[suffix]} file ({first[:160]})"


def _pdf_pages(file: Path) -> list[str] | str:
    from pypdf import PdfReader  # imported where used: only PDF uploads need it

    reader = PdfReader(str(file))
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                return "it is protected by a password"
        except Exception:  # pypdf raises several types for ciphers it cannot open
            return "it is protected by a password"
    return [page.extract_text() or "" for page in reader.pages]


def _docx_text(file: Path) -> str:
    import docx  # python-docx, imported where used

    document = docx.Document(str(file))
    parts = []
    for item in document.iter_inner_content():  # paragraphs and tables in reading order
        if hasattr(item, "rows"):
            for row in item.rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells))  # merged cells repeat
                parts.append(" | ".join(c for c in cells if c))
            parts.append("")
        else:
            parts.append(item.text)
            parts.append("")  # a Word paragraph is a paragraph: a blank line after each
    return "\n".join(parts)


def pdf_text(pages: list[str]) -> str:
    """The pages' text as paragraphs: running headers, footers and page numbers dropped, lines of a paragraph
    joined, words hyphenated across lines rejoined.

    Args:
        pages: each page's extracted text.
    """
    lines_by_page = [[line.rstrip() for line in page.splitlines()] for page in pages]
    repeated = _running_lines(lines_by_page)
    kept = []
    for lines in lines_by_page:
        edge = {i for i in range(len(lines)) if i < 2 or i >= len(lines) - 2}
        kept.append([line for i, line in enumerate(lines)
                     if not (i in edge and (_normal(line) in repeated or PAGE_NUMBER.match(line.strip())))])
    return tidy("\n\n".join(_paragraphs(lines) for lines in kept))


def _normal(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Lines (digits ignored) among the first or last two of most pages: headers and footers."""
    if len(pages) < 3:
        return set()
    counts = Counter()
    for lines in pages:
        edge = [line for line in lines[:2] + lines[-2:] if line.strip()]
        counts.update({_normal(line) for line in edge})
    return {line for line, n in counts.items() if n >= REPEATED_ON_PAGES * len(pages)}


def _paragraphs(lines: list[str]) -> str:
    """A PDF page's lines joined into paragraphs: a line ends a paragraph when it is blank, or short and ends a
    sentence; a short line without an end mark that starts with a capital is a heading, a paragraph of its own;
    a hyphen at the end of a line before a lower-case word is a word split across lines."""
    filled = [len(line) for line in lines if line.strip()]
    if not filled:
        return ""
    full = sorted(filled)[len(filled) // 2] * 0.75  # a line this long runs to the right margin
    out, current = [], ""
    for line in lines:
        text = line.strip()
        heading = len(line) < full and text[-1:] not in SENTENCE_END + ",-" and text[:1].isupper()
        if not text or heading:
            if current:
                out.append(current)
            current = ""
            if heading:
                out.append(text)
            continue
        if not current:
            current = text
        elif current.endswith("-") and text[:1].islower():
            current = current[:-1] + text
        else:
            current += " " + text
        if len(line) < full and text[-1:] in SENTENCE_END:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return "\n\n".join(out)


def tidy(text: str) -> str:
    """Unix line ends, no trailing spaces or control characters, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def describe(path: Path) -> str:
    """What ``path`` holds, for the detection's sentence: "a PDF document", "a folder of documents"."""
    if path.is_dir() or path.suffix.lower() == ".zip":
        return f"a {'zip' if path.suffix.lower() == '.zip' else 'folder'} of documents"
    kind = FORMATS.get(path.suffix.lower(), "text")
    return f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind} document" if kind != "text" else "a plain-text document"

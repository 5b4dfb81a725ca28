"""Documents for the domain-adaptation tests, written here: a text PDF (a minimal PDF 1.4 writer, Helvetica, one
line per text operator), a Word file (python-docx) and a small manual about one made-up product."""
from __future__ import annotations

from pathlib import Path

TOPICS = ["filters", "pumps", "valves", "gauges", "seals", "hoses"]


def manual_paragraphs(topic: str, n: int = 6) -> list[str]:
    """Paragraphs of a made-up maintenance manual with a learnable style (repeated phrasing, fixed facts)."""
    return [f"Section {i + 1}. The Harbor {topic} need care every {3 + i} months. Check the {topic} for wear, "
            f"clean them with warm water and mild soap, and note the date in the Harbor service log. Never use "
            f"solvents on the {topic}, because they damage the coating." for i in range(n)]


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF whose pages hold the given lines as real text (what pypdf extracts)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 760 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode('latin-1')}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def write_docx(path: Path, title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    """A Word file with a heading, paragraphs and optionally a table."""
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    document.save(str(path))
    return path


def wrapped(text: str, width: int = 80) -> list[str]:
    """A paragraph as PDF lines of about ``width`` characters (as a PDF lays text out)."""
    import textwrap
    return textwrap.wrap(text, width)


def manual_folder(root: Path, topics=TOPICS) -> Path:
    """A folder of one manual per topic, in every supported format in turn (.md, .txt, .pdf, .docx)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, topic in enumerate(topics):
        paragraphs = manual_paragraphs(topic)
        kind = i % 4
        if kind == 0:
            (root / f"{topic}.md").write_text(f"# Harbor {topic}\n\n" + "\n\n".join(paragraphs) + "\n")
        elif kind == 1:
            (root / f"{topic}.txt").write_text(f"Harbor {topic}\n\n" + "\n\n".join(paragraphs) + "\n")
        elif kind == 2:
            lines = [line for p in paragraphs for line in wrapped(p) + [""]]
            write_pdf(root / f"{topic}.pdf", [lines[:24], lines[24:]])
        else:
            write_docx(root / f"{topic}.docx", f"Harbor {topic}", paragraphs, [["Part", "Interval"],
                                                                             [topic, "3 months"]])
    return root

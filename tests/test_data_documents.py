"""Documents for domain adaptation: text out of txt/md/pdf/docx files, folders and zips; the split by document
or section; sections and exact blocks."""
from __future__ import annotations

import zipfile

import pytest

from core.data import load_data
from core.data.blocks import pack, sections, stretches
from core.data.documents import extract, is_documents, pdf_text
from core.data.limits import DataLimits
from tests.conftest_data import image_folder, write, zip_folder
from tests.support_documents import manual_folder, manual_paragraphs, wrapped, write_docx, write_pdf


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tests.test_chat_support import save_tiny_tokenizer
    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


def test_pdf_text_joins_lines_and_drops_page_furniture(tmp_path):
    body = "The pump needs care every three months. Clean the intake filter with warm water, then check the seal."
    pages = [["ACME Pumps - Service Manual", "Maintenance", *wrapped(body, 40), "Page 1 of 3"],
             ["ACME Pumps - Service Manual", "The seal is replaced with a kit-", "chen knife never.", "Page 2 of 3"],
             ["ACME Pumps - Service Manual", "Storage", "Keep it dry.", "Page 3 of 3"]]
    text, count, problem = extract(write_pdf(tmp_path / "m.pdf", pages), DataLimits())
    assert problem is None and count == 3
    assert "ACME Pumps" not in text and "Page" not in text  # the running header and the page numbers
    assert body in text  # lines of one paragraph joined into one
    assert "kitchen knife" in text  # a word hyphenated across lines
    assert "Maintenance\n\nThe pump" in text and "Storage\n\nKeep it dry." in text  # headings stay paragraphs


def test_docx_keeps_headings_paragraphs_and_tables(tmp_path):
    path = write_docx(tmp_path / "d.docx", "Harbor valves", ["First paragraph.", "Second paragraph."],
                      [["Part", "Interval"], ["valve", "3 months"]])
    text, _, problem = extract(path, DataLimits())
    assert problem is None
    assert text.startswith("Harbor valves\n\nFirst paragraph.\n\nSecond paragraph.")
    assert "valve | 3 months" in text


def test_text_files_are_decoded_and_tidied(tmp_path):
    path = tmp_path / "n.txt"
    path.write_bytes("Caf\xe9 notes\r\n\r\n\r\n\r\nSecond   paragraph.   \r\n".encode("latin-1"))
    text, _, _ = extract(path, DataLimits())
    assert text == "Café notes\n\nSecond   paragraph."


@pytest.mark.parametrize("name, content, expected", [
    ("notes.md", "# Title\n\nSome text.", True),
    ("story.txt", "Once upon a time, in a land far away, there lived a kettle.\nIt boiled, and boiled.\n", True),
    ("table.txt", "text\tlabel\nhello\ta\nbye\tb\n", False),
    ("table2.txt", "question,answer\nhi,hello\nbye,ciao\n", False),
    ("data.csv", "text,label\nhello,a\n", False),
])
def test_which_single_files_are_documents(tmp_path, name, content, expected):
    assert is_documents(write(tmp_path / name, content), None) is expected


def test_folders_and_zips_of_documents_but_not_of_images(tmp_path):
    docs = manual_folder(tmp_path / "docs", ["pumps", "valves"])
    assert is_documents(docs, None) and is_documents(zip_folder(docs, tmp_path / "d.zip"), None)
    images = image_folder(tmp_path / "imgs")
    (images / "README.txt").write_text("photos of pets")
    assert not is_documents(images, None)
    assert is_documents(tmp_path / "anything.csv", "text-completion")  # the user chose the task


def test_a_folder_of_every_format_is_read_and_held_out_by_document(tmp_path, tokenizer):
    folder = manual_folder(tmp_path / "manuals")  # 6 documents: md, txt, pdf, docx
    (folder / "photo.png").write_bytes(b"\x89PNG not really")  # not a document: said and left out
    data = load_data(folder, tokenizer=tokenizer, max_length=64)
    assert data.report.ok, data.report
    assert data.task == "text-completion"
    assert [w.code for w in data.report.warnings] == ["not_document"]
    assert sorted(data.summary["documents"][i]["format"] for i in range(6)) == \
        ["Markdown", "Markdown", "PDF", "Word", "text", "text"]
    held = data.summary["validation"]["documents"]
    assert data.summary["validation"]["by"] == "document" and len(held) == 1
    assert set(data.validation["document"]) == set(held) and not set(data.train["document"]) & set(held)
    blocks = data.summary["blocks"]
    assert blocks["length"] == 64 and blocks["train"] > 50 and blocks["validation"] > 5
    assert data.summary["rows"]["train"] == blocks["train"]
    assert data.summary["example"]["rendered"].startswith("# Harbor filters") or data.summary["example"]["rendered"]
    assert any("blocks of 64 tokens" in line for line in data.detection)


def test_one_document_is_held_out_by_section(tmp_path, tokenizer):
    path = tmp_path / "one.md"
    path.write_text("\n\n".join(manual_paragraphs("pumps", 12)))
    data = load_data(path, tokenizer=tokenizer, max_length=64, seed=3)
    assert data.report.ok and data.summary["validation"]["by"] == "section"
    assert len(data.validation) >= 1 and len(data.train) > len(data.validation)
    sections_text = sorted(list(data.train) + list(data.validation), key=lambda r: r["start"])
    assert "".join(r["text"] for r in sections_text) == path.read_text()  # sections are the exact text


def test_a_zip_of_documents_unpacks_into_the_home(tmp_path, home):
    archive = zip_folder(manual_folder(tmp_path / "m"), tmp_path / "manuals.zip")
    data = load_data(archive, home=home)
    assert data.report.ok and data.task == "text-completion" and data.summary["format"] == "zip"
    assert (home.root / "cache" / "unpacked").is_dir()


def test_validation_documents_from_another_folder(tmp_path, tokenizer):
    train = manual_folder(tmp_path / "train", ["pumps", "valves"])
    held = manual_folder(tmp_path / "held", ["hoses"])
    (held / "copy.md").write_text((train / "pumps.md").read_text())  # also in training: leakage
    data = load_data(train, validation_path=held, tokenizer=tokenizer, max_length=64)
    assert data.report.ok and set(data.validation["document"]) == {"hoses.md"}
    assert "leakage" in data.report.codes()


def test_problems_in_plain_words(tmp_path):
    scanned = write_pdf(tmp_path / "scan.pdf", [[], []])
    data = load_data(scanned)
    assert [p.code for p in data.report.errors] == ["no_text"] and "OCR" in data.report.errors[0].fix
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not a pdf")
    assert [p.code for p in load_data(broken).report.errors] == ["unreadable_document"]
    tiny = write(tmp_path / "tiny.md", "Just one line.")
    assert [p.code for p in load_data(tiny).report.errors] == ["too_little_text"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.csv").write_text("x\n1\n")
    assert "no_documents" in load_data(empty, task="text-completion").report.codes()


def test_a_zip_with_too_many_entries_is_not_opened_here(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(30):
            archive.writestr(f"doc{i}.txt", "text")
    assert not is_documents(path, None, DataLimits(max_zip_files=10))
    assert is_documents(path, None, DataLimits())


def test_sections_join_back_and_stay_near_one_block():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * (5 + i % 7) for i in range(60))
    cut = sections(text, 32)
    assert "".join(piece for _, piece in cut) == text
    assert all(text[start:start + len(piece)] == piece for start, piece in cut)
    assert all(len(piece) / 4 <= 2 * 32 for _, piece in cut)
    long = "x" * 5000  # no break at all: one section, never lost
    assert sections(long, 32) == [(0, long)]


def test_stretches_join_contiguous_sections_only():
    docs, starts, texts = ["a", "a", "a", "b"], [0, 5, 20, 0], ["hello", " wor", "gap", "other"]
    assert stretches(docs, starts, texts) == ["hello wor", "gap", "other"]


def test_pack_is_exact(tokenizer):
    texts = ["The pump needs care. " * 10, "The valve needs care. " * 3]
    packed = pack(tokenizer, texts, 16)
    stream = [t for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] for t in ids + [tokenizer.eos_token_id]]
    joined = [t for block in packed.blocks for t in block]
    assert joined == stream[:len(joined)] and packed.dropped == len(stream) - len(joined)
    assert all(len(b) == 16 for b in packed.blocks[:-1]) and packed.dropped < 16
    assert joined.count(tokenizer.eos_token_id) >= 1  # documents end with the end-of-text token


def test_pdf_text_of_pages_without_furniture():
    assert pdf_text(["First line\nsecond line of it.", "Next page."]) == "First line\n\nsecond line of it.\n\nNext page."

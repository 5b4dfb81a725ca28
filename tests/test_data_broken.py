"""A corpus of broken inputs: each must produce its specific problem code and a message naming the cause.

``load_data`` must never raise for bad data; every case also checks that errors block the datasets.
"""
from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image

from core.data import DataError, DataLimits, load_data
from tests.conftest_data import CASES, classification_csv, image_folder, png, write, zip_entries


def case(name):
    return lambda tmp: CASES / name


def _png_bytes(size=(24, 24)):
    buffer = io.BytesIO()
    Image.new("L", size, 90).save(buffer, format="PNG")
    return buffer.getvalue()


def _folder_with(extra):
    def build(tmp):
        root = image_folder(tmp / "imgs")
        extra(root)
        return root
    return build


def _corrupt_png(root):
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG not really")


def _text_file(root):
    (root / "dog" / "notes.txt").write_text("hello")


def _tiny(root):
    png(root / "cat" / "tiny.png", size=(8, 8))


def _huge(root):
    png(root / "dog" / "huge.png", size=(300, 300))


def _single_class_folder(tmp):
    return image_folder(tmp / "one", classes=("only",))


def _no_class_folders(tmp):
    png(tmp / "flat" / "a.png")
    return tmp / "flat"


def _zip_traversal(tmp):
    return zip_entries(tmp / "evil.zip", {"cat/1.png": _png_bytes(), "../../escape.png": _png_bytes()})


def _zip_absolute(tmp):
    return zip_entries(tmp / "abs.zip", {"cat/1.png": _png_bytes(), "/etc/evil.png": _png_bytes()})


def _zip_symlink(tmp):
    return zip_entries(tmp / "link.zip", {"cat/1.png": _png_bytes()}, link="dog/passwd.png")


def _zip_many(tmp):
    return zip_entries(tmp / "many.zip", {f"cat/{i}.png": _png_bytes() for i in range(12)})


def _zip_bomb(tmp):
    return zip_entries(tmp / "bomb.zip", {"cat/zeros.png": b"\0" * 200_000, "dog/a.png": _png_bytes()})


def _not_zip(tmp):
    return write(tmp / "fake.zip", "just text")


def _leak(tmp):
    classification_csv(tmp / "train.csv")
    write(tmp / "val.csv", "text,label\nexample a number 1,a\nfresh text,b\n")
    return tmp / "train.csv"


def _near_copy_file(tmp):
    classification_csv(tmp / "train.csv")
    write(tmp / "val.csv", "text,label\n\"Example A: number 99!\",a\nfresh text,b\n")  # a training row, renumbered
    return tmp / "train.csv"


def _templated(tmp):
    lines = ["text,label"] + [f"Order {1000 + i} has not arrived,late" for i in range(30)] + \
        [f"Refund invoice {500 + i} please,refund" for i in range(30)]
    write(tmp / "tickets.csv", "\n".join(lines) + "\n")
    return tmp / "tickets.csv"


def _unknown_val_label(tmp):
    classification_csv(tmp / "train.csv")
    write(tmp / "val.csv", "text,label\nnew one,a\nnew two,zebra\n")
    return tmp / "train.csv"


def _imbalance(tmp):
    rows = [f"big {i},big" for i in range(40)] + [f"small {i},small" for i in range(3)]
    return write(tmp / "imb.csv", "text,label\n" + "\n".join(rows) + "\n")


def _few_examples(tmp):
    rows = [f"many {i},many" for i in range(10)] + ["rare one,rare", "rare two,rare", "rare three,rare"]
    return write(tmp / "few.csv", "text,label\n" + "\n".join(rows) + "\n")


def _free_text_label(tmp):
    rows = [f"text {i},label value {i}" for i in range(30)]
    return write(tmp / "free.csv", "text,label\n" + "\n".join(rows) + "\n")


def _messy_header(tmp):
    return classification_csv(tmp / "data.csv")


# (id, build input, load_data kwargs, "error"|"warning", code, words that must be in the message)
CASES_TABLE = [
    ("empty file", case("empty.csv"), {}, "error", "empty_file", ["empty"]),
    ("blank lines only", case("blank_lines.csv"), {}, "error", "empty_file", ["empty"]),
    ("header only", case("header_only.csv"), {}, "error", "no_rows", ["no data rows"]),
    ("no header", case("no_header.csv"), {}, "error", "no_header", ["first line", "column names"]),
    ("too many fields", case("bad_lines.csv"), {}, "warning", "bad_lines", ["line 4"]),
    ("unclosed quote", case("unclosed_quote.csv"), {}, "error", "unreadable_file", ["quote"]),
    ("invalid json", case("invalid.json"), {}, "error", "unreadable_file", ["line 2"]),
    ("json list of strings", case("strings.json"), {}, "error", "json_shape", ["no JSON objects"]),
    ("json not records", case("not_records.json"), {}, "error", "json_shape", ["list of records"]),
    ("bad jsonl line", case("bad_line.jsonl"), {}, "warning", "bad_json_line", ["line 2"]),
    ("damaged docx", case("notes.docx"), {}, "error", "unreadable_document", ["notes.docx", "Word"]),
    ("old xls", case("old.xls"), {}, "error", "unsupported_format", [".xlsx"]),
    ("corrupt xlsx", case("corrupt.xlsx"), {}, "error", "unreadable_file", ["corrupt.xlsx"]),
    ("corrupt parquet", case("corrupt.parquet"), {}, "error", "unreadable_file", ["parquet"]),
    ("no assistant turn", case("no_assistant.jsonl"), {}, "warning", "bad_messages", ["line 2", "no assistant"]),
    ("unknown chat role", case("unknown_role.jsonl"), {}, "warning", "bad_messages", ["wizard"]),
    ("nothing to detect", case("numbers_only.csv"), {}, "error", "no_text", ["learn from: 'id' holds numbers."]),
    ("measurements only", case("measurements.csv"), {}, "error", "no_text",
     ["4 hold numbers ('sepal length (cm)'", "'species' holds a few distinct values", "tabular model"]),
    ("latin-1 file", case("latin1.csv"), {}, "warning", "encoding", ["UTF-8"]),
    ("single class", case("single_class.csv"), {}, "error", "single_class", ["spam"]),
    ("class with one example", case("rare_class.csv"), {}, "error", "rare_class", ["'z' (1)"]),
    ("empty cells", case("empty_cells.csv"), {}, "warning", "empty_cells", ["rows 3 and 4"]),
    ("duplicate rows", case("duplicates.csv"), {}, "warning", "duplicates", ["rows 4 and 6"]),
    ("conflicting labels", case("conflicting.csv"), {}, "warning", "conflicting_labels", ["rows 2 and 3"]),
    ("missing file", lambda tmp: tmp / "nope.csv", {}, "error", "missing_file", ["does not exist"]),
    ("unknown column", _messy_header, {"columns": {"text": "txet"}}, "error", "unknown_column",
     ["'txet'", "Did you mean 'text'"]),
    ("unknown role", _messy_header, {"columns": {"sentence": "text"}}, "error", "unknown_role", ["sentence"]),
    ("unknown task", _messy_header, {"task": "regression"}, "error", "unknown_task", ["regression"]),
    ("chat task without response", _messy_header, {"task": "chat"}, "error", "missing_column", ["response"]),
    ("table for image task", _messy_header, {"task": "image-classification"}, "error", "task_mismatch",
     ["folder"]),
    ("bad fraction", _messy_header, {"validation_fraction": 1.5}, "error", "bad_fraction", ["1.5"]),
    ("leakage", _leak, {"validation_path": "val.csv"}, "warning", "leakage", ["row 2"]),
    ("near copy in a validation file", _near_copy_file, {"validation_path": "val.csv"}, "warning", "near_copies",
     ["val.csv: row 2 is the text of a training row", "1 of 2", "Validation data"]),
    ("one template on both sides of the split", _templated, {}, "warning", "near_copies",
     ["the validation split:", "higher than on new text", "studio eval RUN --data FILE"]),
    ("unknown validation label", _unknown_val_label, {"validation_path": "val.csv"}, "warning",
     "unknown_validation_label", ["zebra"]),
    ("imbalance", _imbalance, {}, "warning", "imbalance", ["'big' has 40", "only 3"]),
    ("few examples", _few_examples, {}, "warning", "few_examples", ["'rare' (3)"]),
    ("label looks like free text", _free_text_label, {}, "warning", "label_many_values", ["free text"]),
    ("too many rows", _messy_header, {"limits": DataLimits(max_rows=5)}, "error", "too_many_rows", ["18"]),
    ("file too large", _messy_header, {"limits": DataLimits(max_bytes=100)}, "error", "file_too_large",
     ["over the limit"]),
    ("corrupt image", _folder_with(_corrupt_png), {}, "warning", "unreadable_image", ["cat/broken.png"]),
    ("not an image", _folder_with(_text_file), {}, "warning", "not_image", ["dog/notes.txt"]),
    ("tiny image", _folder_with(_tiny), {}, "warning", "small_images", ["cat/tiny.png"]),
    ("image over pixel limit", _folder_with(_huge), {"limits": DataLimits(max_image_pixels=10_000)}, "warning",
     "image_too_large", ["dog/huge.png"]),
    ("single image class", _single_class_folder, {}, "error", "single_class", ["only"]),
    ("no class folders", _no_class_folders, {}, "error", "no_class_folders", ["one folder per class"]),
    ("zip path traversal", _zip_traversal, {}, "error", "unsafe_zip", ["../../escape.png"]),
    ("zip absolute path", _zip_absolute, {}, "error", "unsafe_zip", ["/etc/evil.png"]),
    ("zip symlink", _zip_symlink, {}, "error", "unsafe_zip", ["symbolic link"]),
    ("zip too many files", _zip_many, {"limits": DataLimits(max_zip_files=5)}, "error", "zip_too_many_files",
     ["12"]),
    ("zip expands too much", _zip_bomb, {"limits": DataLimits(max_uncompressed_bytes=100_000)}, "error",
     "zip_too_large", ["over the limit"]),
    ("not a zip", _not_zip, {}, "error", "unreadable_file", ["not a readable zip"]),
]


@pytest.mark.parametrize("build, kwargs, kind, code, words", [c[1:] for c in CASES_TABLE],
                         ids=[c[0] for c in CASES_TABLE])
def test_broken_input_is_reported(tmp_path, build, kwargs, kind, code, words):
    path = build(tmp_path)
    if "validation_path" in kwargs:
        kwargs = {**kwargs, "validation_path": tmp_path / kwargs["validation_path"]}
    data = load_data(path, **kwargs)
    problems = data.report.errors if kind == "error" else data.report.warnings
    found = [p for p in problems if p.code == code]
    assert found, f"expected {kind} {code}, got {data.report}"
    for word in words:
        assert word in str(found[0]), (word, str(found[0]))  # the message and its fix
    assert found[0].fix
    if kind == "error":
        assert data.train is None and data.validation is None and not data.report.ok
        with pytest.raises(DataError) as info:
            data.require_ok()
        assert found[0].message in str(info.value)


def test_corpus_is_large_enough():
    assert len(CASES_TABLE) >= 25
    assert len({c[4] for c in CASES_TABLE}) >= 25


def test_every_blocking_problem_is_listed_at_once(tmp_path):
    classification_csv(tmp_path / "data.csv")
    data = load_data(tmp_path / "data.csv", columns={"text": "nope", "label": "missing"}, validation_fraction=2.0)
    codes = [p.code for p in data.report.errors]
    assert codes.count("unknown_column") == 2 and "bad_fraction" in codes
    with pytest.raises(DataError) as info:
        data.require_ok()
    assert "'nope'" in str(info.value) and "'missing'" in str(info.value) and "3 problem(s)" in str(info.value)


def test_unsafe_zip_writes_nothing_outside(tmp_path):
    load_data(_zip_traversal(tmp_path))
    assert not (tmp_path.parent / "escape.png").exists()
    assert not list(tmp_path.glob("*.unzipped"))


def test_row_numbers_count_blank_lines(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nok,a\n\n,b\nfine,a\nmore,b\n")
    data = load_data(path)
    (problem,) = [p for p in data.report.warnings if p.code == "empty_cells"]
    assert problem.rows == (4,)


def test_no_data_problem_raises(tmp_path):
    for name in sorted(p.name for p in CASES.iterdir()):
        shutil.copy(CASES / name, tmp_path / name)
        load_data(tmp_path / name)  # must not raise

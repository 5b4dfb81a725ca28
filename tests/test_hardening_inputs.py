"""The bad-input corpus: every kind of broken upload, setting and model name a visitor can send.

One table, one test. Each case goes in the way a visitor's file does in the public demo (copied into the
visitor's upload folder by ``core.uploads.save_upload``, read with the public ``DataLimits``), or, for
settings and models, through ``JobConfig`` / ``resolve_model`` / ``PublicPolicy.check_job``. Each must give
its specific problem code and a message naming the problem and the fix; none may raise anything else.
Fixtures of tests/test_data_broken.py are reused where they exist; the rest are in tests/bad_inputs/ or
built below. tests/test_data_corpus.py extends this corpus with awkward but real exports (CRM, review and
survey exports, workbooks, split folders, phone photos, chat logs), each stating the training data it must
give or the problem it must name; the two are counted together there.
"""
from __future__ import annotations

import io
import json
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import ConfigError, DataConfig, JobConfig
from core.data import DataLimits, load_data, open_rgb
from core.models import ModelUnavailable, resolve_model
from core.public import PublicPolicy
from core.uploads import UploadError, save_upload, session_upload_dir
from tests.conftest_data import CASES, image_folder, zip_entries
from tests.test_data_broken import _png_bytes, _zip_absolute, _zip_symlink, _zip_traversal

BAD = Path(__file__).parent / "bad_inputs"
SESSION = "visitor-1"
PUBLIC = PublicPolicy(enabled=True)


@dataclass
class Outcome:
    """What the studio told the visitor: (code, severity, full text) for each problem."""

    problems: list[tuple[str, str, str]]
    data: object = None

    def find(self, code: str, severity: str, first_word: str = "") -> str | None:
        """The problem with this code and severity (the one naming ``first_word`` when there are several)."""
        texts = [text for c, s, text in self.problems if c == code and s == severity]
        return next((t for t in texts if first_word in t), texts[0] if texts else None)


# --- how a case is fed in ---------------------------------------------------------------------------------

def upload(build, **kwargs):
    """A data case: the file is uploaded into the visitor's folder and read with the public limits."""
    def run(tmp, home):
        source = build(tmp)
        if source.is_dir():  # an image folder arrives as a zip of itself
            source = _zip_dir(source, tmp / f"{source.name}.zip")
        saved = save_upload(home, SESSION, source, source.name, limits=PUBLIC.data_limits())
        return read(saved, **kwargs)
    return run


def direct(build, **kwargs):
    """A data case read where it lies (files too big to upload, and the default limits)."""
    return lambda tmp, home: read(build(tmp), **kwargs)


def read(path, **kwargs) -> Outcome:
    kwargs.setdefault("limits", PUBLIC.data_limits())
    data = load_data(path, **kwargs)
    return Outcome([(p.code, "error", str(p)) for p in data.report.errors]
                   + [(p.code, "warning", str(p)) for p in data.report.warnings], data)


def config_case(text: str):
    def run(tmp, home):
        try:
            JobConfig.from_yaml(text).validate()
        except ConfigError as exc:
            return Outcome([("config", "error", str(exc))])
        return Outcome([])
    return run


def model_case(name: str, task: str):
    def run(tmp, home):
        try:
            resolve_model(name, home, task=task)
        except ModelUnavailable as exc:
            return Outcome([("model", "error", str(exc))])
        return Outcome([])
    return run


def public_case(**changes):
    def run(tmp, home):
        config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only",
                           data=DataConfig(path=str(save_upload(home, SESSION, CASES / "duplicates.csv"))))
        for key, value in changes.items():
            target, _, field = key.rpartition("__")
            setattr(getattr(config, target) if target else config, field, value(tmp) if callable(value) else value)
        return Outcome([("public", "error", p) for p in PUBLIC.check_job(config, SESSION, _NoJobs(home))])
    return run


def upload_refused(build, limits=None):
    def run(tmp, home):
        source = build(tmp)
        try:
            save_upload(home, SESSION, source, source.name, limits=limits or PUBLIC.data_limits())
        except UploadError as exc:
            return Outcome([("upload", "error", str(exc))])
        return Outcome([])
    return run


class _NoJobs:
    def __init__(self, home):
        self.home = home

    def jobs(self, owner=None):
        return []


# --- builders --------------------------------------------------------------------------------------------

def fixture(name):
    return lambda tmp: BAD / name


def case(name):
    return lambda tmp: CASES / name


def _zip_dir(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder.parent).as_posix())
    return out


def _bytes(name, data):
    def build(tmp):
        (tmp / name).write_bytes(data)
        return tmp / name
    return build


def _sparse(name, size):
    def build(tmp):
        with open(tmp / name, "wb") as handle:
            handle.truncate(size)  # 2 GB on paper, nothing on disk
        return tmp / name
    return build


def _workbook(sheets):
    def build(tmp):
        import openpyxl
        book = openpyxl.Workbook()
        book.remove(book.active)
        for title, rows in sheets.items():
            sheet = book.create_sheet(title)
            for row in rows:
                sheet.append(row)
        book.save(tmp / "book.xlsx")
        return tmp / "book.xlsx"
    return build


TEXT_ROWS = [["text", "label"]] + [[f"example {c} number {i}", c] for c in "ab" for i in range(8)]


def _images(extra):
    """A two-class image folder plus whatever ``extra(root)`` adds."""
    def build(tmp):
        root = image_folder(tmp / "photos", per_class=6)
        extra(root)
        return root
    return build


def _noise_bytes(fmt, mode="RGB"):
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def _truncated(name, fmt):
    def add(root):
        data = _noise_bytes(fmt)
        (root / "cat" / name).write_bytes(data[: len(data) // 2])
    return add


def _giant_png(root):
    """A PNG whose header says 30,000 x 30,000 pixels (a decompression bomb), in a few hundred bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")
    (root / "dog" / "giant.png").write_bytes(data)


def _mode_image(mode, name, value):
    def add(root):
        if mode == "I;16":
            Image.fromarray(np.full((32, 32), value, dtype=np.uint16)).save(root / "cat" / name)
        else:
            Image.new(mode, (32, 32), value).save(root / "cat" / name)
    return add


def _nested_zip(tmp):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("cat/9.png", _png_bytes())
    entries = {f"{c}/{i}.png": _png_bytes() for c in ("cat", "dog") for i in range(6)}
    entries["cat/more.zip"] = inner.getvalue()
    return zip_entries(tmp / "nested.zip", entries)


def _drive_letter(tmp):
    return zip_entries(tmp / "drive.zip", {"cat/1.png": _png_bytes(), "C:\\Windows\\evil.png": _png_bytes()})


def _overlapping_bomb(tmp):
    """A non-recursive zip bomb: one deflated 1 MB entry, named 2,100 times by the central directory
    (2.1 GB declared, 1 KB on disk)."""
    body = zlib.compress(b"\0" * 1_000_000, 9)[2:-4]  # raw deflate
    crc = zlib.crc32(b"\0" * 1_000_000)
    name = b"cat/0.png"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), 1_000_000, len(name), 0)
    central = b""
    for i in range(2_100):
        entry = f"cat/{i}.png".encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(body), 1_000_000,
                               len(entry), 0, 0, 0, 0, 0, 0) + entry
    offset = len(local) + len(name) + len(body)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2_100, 2_100, len(central), offset, 0)
    (tmp / "bomb.zip").write_bytes(local + name + body + central + end)
    return tmp / "bomb.zip"


def _many_files(tmp, count=100_000):
    """A zip of 100,000 empty files, written directly (zip64 end records) in a fraction of a second."""
    out = tmp / "many.zip"
    local, central = bytearray(), bytearray()
    for i in range(count):
        name = f"cat/{i}.png".encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0,
                               0, len(local)) + name
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    start, size = len(local), len(central)
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, start)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, start + size, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    out.write_bytes(bytes(local + central) + zip64_end + locator + end)
    return out


def _pickle_as_jsonl(tmp):
    import pickle

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp / "PWNED",))
    return _bytes("rows.jsonl", pickle.dumps(Payload(), protocol=4))(tmp)


def _workbook_as_csv(tmp):
    book = _workbook({"Sheet": TEXT_ROWS})(tmp)
    return _bytes("export.csv", book.read_bytes())(tmp)


def _formula_workbook(tmp):
    rows = TEXT_ROWS + [['=HYPERLINK("http://example.invalid","click")', "a"], ["=1+1", "b"]]
    return _workbook({"Sheet": rows})(tmp)


# (id, how it goes in, severity, code, words the message and its fix must contain)
CORPUS = [
    # tables
    ("comma file named .tsv", upload(fixture("commas.tsv")), "warning", "separator_mismatch", ["commas", ".csv"]),
    ("pipe-separated csv", upload(fixture("pipes.csv")), "ok", "text-classification", []),
    ("rows with too many fields", upload(case("bad_lines.csv")), "warning", "bad_lines", ["line 4", "Quote"]),
    ("rows with too few fields", upload(fixture("ragged_short.csv")), "warning", "empty_cells",
     ["rows 3 and 6", "Fill in"]),
    ("random bytes as csv", upload(_bytes("noise.csv", np.random.default_rng(1).bytes(6000))), "error",
     "binary_file", ["binary data", "Export"]),
    ("workbook renamed .csv", upload(_workbook_as_csv), "error", "wrong_format", ["zip archive", ".xlsx"]),
    ("pickle renamed .jsonl", upload(_pickle_as_jsonl), "error", "wrong_format", ["pickle"]),
    ("workbook with only empty sheets", upload(_workbook({"Sheet1": [], "Sheet2": []})), "error", "empty_sheet",
     ["'Sheet1', 'Sheet2'", "first sheet"]),
    ("data on the second sheet", upload(_workbook({"Cover": [], "Data": TEXT_ROWS})), "warning", "empty_sheet",
     ["'Data' was used"]),
    ("2 GB file", direct(_sparse("huge.csv", 2 * 1024**3 + 1), limits=DataLimits()), "error", "file_too_large",
     ["GB", "smaller sample"]),
    ("2 GB upload", upload_refused(_sparse("huge.csv", 2 * 1024**3 + 1)), "error", "upload",
     ["2.1 GB", "over the limit of 52.4 MB"]),
    ("header only", upload(case("header_only.csv")), "error", "no_rows", ["no data rows"]),
    ("mixed encodings", upload(fixture("mixed_encoding.csv")), "warning", "mixed_encoding",
     ["line 5", "UTF-8"]),
    ("whole file in latin-1", upload(case("latin1.csv")), "warning", "encoding", ["UTF-8"]),
    ("utf-16 with BOM", upload(fixture("utf16_bom.csv")), "ok", "text-classification", []),
    ("formula cells in csv", upload(fixture("formula_injection.csv")), "warning", "formula_cells",
     ["rows 4 and 8", "never run", "Paste Special"]),
    ("formula cells in xlsx", upload(_formula_workbook), "warning", "formula_cells", ["rows 18 and 19"]),
    ("one label per row", upload(fixture("ids_as_labels.csv")), "error", "rare_class", ["'ticket-", "Add examples"]),
    ("one label per row (warning)", upload(fixture("ids_as_labels.csv")), "warning", "label_many_values",
     ["free text"]),
    ("unsupported format", upload_refused(case("notes.docx")), "error", "upload", [".docx", "table"]),
    ("python file upload", upload_refused(_bytes("train.py", b"import os\nos.system('id')\n")), "error",
     "upload", ["not a data file", ".py"]),
    # JSON / JSONL
    ("broken jsonl line", upload(case("bad_line.jsonl")), "warning", "bad_json_line", ["line 2"]),
    ("jsonl cut mid-object", upload(fixture("truncated.jsonl")), "warning", "bad_json_line",
     ["line 13", "one complete JSON object"]),
    ("unknown message role", upload(case("unknown_role.jsonl")), "warning", "bad_messages", ["wizard"]),
    ("system turn in the middle", upload(fixture("system_after_start.jsonl")), "warning", "bad_messages",
     ["line 3", "system turn after the start"]),
    ("empty conversation", upload(fixture("empty_conversations.jsonl")), "warning", "bad_messages",
     ["line 4", "no turns"]),
    ("conversation without answer", upload(fixture("empty_conversations.jsonl")), "warning", "bad_messages",
     ["line 7", "no assistant turn"]),
    ("only empty conversations", upload(fixture("only_empty_conversations.jsonl")), "error", "no_rows",
     ["no usable rows"]),
    ("json of a bare string", upload(fixture("bare_string.json")), "error", "json_shape", ["list of records"]),
    # images
    ("truncated png", upload(_images(_truncated("cut.png", "PNG"))), "warning", "truncated_image",
     ["cat/cut.png", "again"]),
    ("truncated jpeg", upload(_images(_truncated("cut.jpg", "JPEG"))), "warning", "truncated_image",
     ["cat/cut.jpg"]),
    ("zero-byte image", upload(_images(lambda r: (r / "dog" / "empty.png").write_bytes(b""))), "warning",
     "unreadable_image", ["dog/empty.png", "Re-save"]),
    ("text named .jpg", upload(_images(lambda r: (r / "dog" / "note.jpg").write_text("not a photo"))),
     "warning", "unreadable_image", ["dog/note.jpg"]),
    ("30000 x 30000 pixels", upload(_images(_giant_png)), "warning", "image_too_large",
     ["dog/giant.png", "Resize"]),
    ("CMYK jpeg is converted", upload(_images(_mode_image("CMYK", "cmyk.jpg", (0, 255, 255, 0)))), "ok",
     "cat/cmyk.jpg", [(255, 0, 0)]),
    ("16-bit png is converted", upload(_images(_mode_image("I;16", "deep.png", 65535))), "ok", "cat/deep.png",
     [(255, 255, 255)]),
    ("palette png is converted", upload(_images(_mode_image("P", "palette.png", 0))), "ok", "cat/palette.png",
     [(0, 0, 0)]),
    ("transparent png is converted", upload(_images(_mode_image("RGBA", "alpha.png", (9, 9, 9, 0)))), "ok",
     "cat/alpha.png", [(255, 255, 255)]),
    ("every image broken", upload(_images(lambda r: [p.write_bytes(b"x") for p in r.rglob("*.png")])), "error",
     "no_images", ["no readable images"]),
    # zips
    ("zip path traversal", upload(_zip_traversal), "error", "unsafe_zip", ["../../escape.png", "not extracted"]),
    ("zip absolute path", upload(_zip_absolute), "error", "unsafe_zip", ["/etc/evil.png"]),
    ("zip drive letter", upload(_drive_letter), "error", "unsafe_zip", ["C:\\Windows\\evil.png"]),
    ("zip symbolic link", upload(_zip_symlink), "error", "unsafe_zip", ["symbolic link"]),
    ("zip inside the zip", upload(_nested_zip), "warning", "nested_archive", ["cat/more.zip", "Unpack"]),
    ("zip bomb", upload(_overlapping_bomb), "error", "zip_too_large", ["2.1 GB", "zip bomb"]),
    ("100,000 tiny files", upload(_many_files), "error", "zip_too_many_files", ["100,000", "25,000"]),
    # settings and models
    ("negative numbers", config_case("train: {batch_size: -4, learning_rate: 0}"), "error", "config",
     ["train.batch_size is -4", "greater than 0", "train.learning_rate is 0.0"]),
    ("absurd numbers", config_case("train: {epochs: 1e9, max_length: 10000000}"), "error", "config",
     ["train.epochs", "far beyond", "train.max_length"]),
    ("unknown keys", config_case("task: chat\ntrain: {epoch: 3}\nsurprise: 1"), "error", "config",
     ["unknown setting 'train.epoch'", "epochs", "unknown setting 'surprise'"]),
    ("words for numbers", config_case("train: {learning_rate: lots}"), "error", "config", ["must be a number"]),
    ("settings not a mapping", config_case("- 1\n- 2"), "error", "config", ["mapping"]),
    ("unknown task", config_case("task: regression"), "error", "config", ["regression", "chat"]),
    ("model of the wrong task", model_case("minilm-l6", "chat"), "error", "model",
     ["text model", "smollm2-135m-instruct"]),
    ("image model for text", model_case("efficientnet-lite0", "text-classification"), "error", "model",
     ["image model", "minilm-l6"]),
    ("hub id missing offline", model_case("someone/no-such-model", "chat"), "error", "model",
     ["offline", "huggingface-cli download"]),
    ("public: model outside the catalog", public_case(model="someone/custom-bert"), "error", "public",
     ["not in the catalog", "minilm-l6"]),
    ("public: a server path as data", public_case(data__path="/etc/passwd"), "error", "public",
     ["paths on the server", "Upload"]),
    ("public: remote code", public_case(trust_remote_code=True), "error", "public", ["trust_remote_code"]),
]


@pytest.mark.parametrize("run, severity, code, words", [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_input_gets_a_specific_plain_message(tmp_path, home, run, severity, code, words):
    started = time.perf_counter()
    outcome = run(tmp_path, home)
    assert time.perf_counter() - started < 10  # nothing here may read 2 GB or expand a bomb
    if severity == "ok":
        _assert_accepted(outcome, code, words)
        return
    text = outcome.find(code, severity, words[0] if words else "")
    assert text, f"expected {severity} {code}, got {outcome.problems}"
    for word in words:
        assert word in text, (word, text)
    if severity == "error" and outcome.data is not None:
        assert outcome.data.train is None and not outcome.data.ok
    assert not (tmp_path / "PWNED").exists()  # nothing uploaded is ever unpickled or run


def _assert_accepted(outcome: Outcome, what: str, pixels: list) -> None:
    data = outcome.data
    assert data.ok, outcome.problems
    if not pixels:  # a table read correctly
        assert data.task == what and len(data.train) > 0
        return
    paths = [p for p in list(data.train["image"]) + list(data.validation["image"]) if p.endswith(what)]
    assert paths, f"{what} was not kept"
    image = open_rgb(paths[0])
    assert image.mode == "RGB" and image.getpixel((0, 0)) == pixels[0]
    assert not [p for p in outcome.problems if p[0] in ("unreadable_image", "not_image")]


def test_the_corpus_covers_every_kind_of_bad_input():
    assert len(CORPUS) >= 40 and len({c[0] for c in CORPUS}) == len(CORPUS)
    codes = {c[3] for c in CORPUS}
    for needed in ("separator_mismatch", "binary_file", "empty_sheet", "file_too_large", "no_rows",
                   "mixed_encoding", "formula_cells", "rare_class", "bad_json_line", "bad_messages",
                   "truncated_image", "unreadable_image", "image_too_large", "unsafe_zip", "nested_archive",
                   "zip_too_large", "zip_too_many_files", "config", "model", "public"):
        assert needed in codes, needed


def test_formula_cells_stay_plain_text(tmp_path):
    data = load_data(BAD / "formula_injection.csv")
    texts = list(data.train["text"]) + list(data.validation["text"])
    assert "=cmd|' /C calc'!A0" in texts  # kept verbatim: nothing evaluated it


def test_the_zip_of_many_files_is_refused_before_its_directory_is_read(tmp_path):
    path = _many_files(tmp_path)
    assert len(zipfile.ZipFile(path).infolist()) == 100_000  # a real, valid archive
    started = time.perf_counter()
    data = load_data(path, limits=DataLimits.public())
    assert time.perf_counter() - started < 0.5
    assert [p.code for p in data.report.errors] == ["zip_too_many_files"]


def test_uploads_of_one_visitor_land_in_their_own_folder(tmp_path, home):
    saved = save_upload(home, SESSION, BAD / "pipes.csv")
    assert saved.parent.parent == session_upload_dir(home, SESSION)
    assert json.dumps(str(saved))  # a plain path the UI can hand to load_data

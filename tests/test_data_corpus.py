"""Awkward but real inputs, as people's tools write them: each must train on the right thing or say why not.

One table, one test. Each case builds its file the way the tool that makes it would (pandas and openpyxl
exports with title rows and several sheets, zips with split folders and names written without the UTF-8 flag,
phone photos: PNG bytes under .jpg, JPEG + an appended video, EXIF rotation, HEIC) and states its outcome:

- ``Trains(...)``: the right training data: task, the text/label (or chat) columns, the classes with their
  counts, and the warnings that must say what was changed;
- ``Refuses(code, ...)``: a blocking problem whose message names the problem and whose fix says what to do;
  the ``DataError`` then lists every warning of the load next to the errors.

This corpus extends the bad-input corpus of tests/test_hardening_inputs.py (the two are counted together).
"""
from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.data import DataError, load_data, open_rgb, understood_lines
from tests.conftest_data import TEAMS, product_reviews, support_tickets


@dataclass
class Trains:
    """The load must succeed with exactly this understanding."""

    task: str
    columns: dict = field(default_factory=dict)  # role -> column that must be chosen
    classes: dict | None = None  # class -> rows in training + validation
    rows: int | None = None  # training + validation rows
    test: int | None = None  # rows held out as the test split
    warnings: tuple = ()  # warning codes that must be there
    words: tuple = ()  # words that must appear in the understood lines
    check: object = None  # an extra check on the PreparedData


@dataclass
class Refuses:
    """The load must stop with this problem code; its message holds ``words``, its fix ``fix``."""

    code: str
    words: tuple = ()
    fix: tuple = ()
    warnings: tuple = ()  # warning codes that must be listed with the error
    options: tuple | None = None  # the choices the problem offers (candidate columns or sheets)


# --- writers: files as users' tools write them -------------------------------------------------------------

def csv_of(frame_fn, name="export.csv", **to_csv):
    def build(tmp):
        frame_fn().to_csv(tmp / name, index=False, **to_csv)
        return tmp / name
    return build


def text_file(name, text, encoding="utf-8"):
    def build(tmp):
        (tmp / name).write_bytes(text.encode(encoding))
        return tmp / name
    return build


def lines_csv(name, header, rows, sep=","):
    return text_file(name, "\n".join([header] + [sep.join(map(str, r)) for r in rows]) + "\n")


def workbook(sheets: dict, name="book.xlsx", titles: dict | None = None, offset_col: int = 0):
    """An openpyxl workbook: per sheet a DataFrame (or rows), optionally with title rows above the header."""
    def build(tmp):
        import openpyxl
        book = openpyxl.Workbook()
        book.remove(book.active)
        for title, frame in sheets.items():
            sheet = book.create_sheet(title)
            for line in (titles or {}).get(title, []):
                sheet.append([None] * offset_col + list(line))
            frame = frame() if callable(frame) else frame
            rows = [list(frame.columns)] + frame.values.tolist() if isinstance(frame, pd.DataFrame) else frame
            for row in rows:
                sheet.append([None] * offset_col + [v.item() if hasattr(v, "item") else v for v in row])
        book.save(tmp / name)
        return tmp / name
    return build


def simple_rows(per_class=8, classes=("billing", "shipping", "technical"), text="text", label="label"):
    def frame():
        rows = [(f"{TEAMS[c.title()][i % 6].format(n=100 + i)} ({c} case {i})" if c.title() in TEAMS
                 else f"a message about {c} number {i}", c) for c in classes for i in range(per_class)]
        return pd.DataFrame(rows, columns=[text, label])
    return frame


def tickets(**kwargs):
    return lambda: support_tickets(**kwargs)


def renamed(frame_fn, **names):
    return lambda: frame_fn().rename(columns=names)


def with_column(frame_fn, name, values):
    def frame():
        out = frame_fn()
        out[name] = values(out) if callable(values) else values
        return out
    return frame


def jsonl(name, records):
    return text_file(name, "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")


def chats(roles=("user", "assistant"), n=12, key_role="role", key_text="content", wrap="messages", extra=None):
    out = []
    for i in range(n):
        turns = [{key_role: roles[0], key_text: f"My order {1000 + i} has not arrived, what can I do?"},
                 {key_role: roles[1], key_text: f"Sorry about order {1000 + i}; I have sent a new one today."}]
        record = {wrap: turns}
        if extra:
            record.update(extra(i))
        out.append(record)
    return out


# --- images --------------------------------------------------------------------------------------------------

def noise(seed, size=(32, 32), mode="RGB"):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)


def image_bytes(seed, fmt="PNG", **save):
    buffer = io.BytesIO()
    noise(seed).save(buffer, fmt, **save)
    return buffer.getvalue()


def tree(entries: dict):
    """A folder of files: {relative path: bytes}; returns the folder."""
    def build(tmp):
        root = tmp / "dataset"
        for rel, data in entries.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data() if callable(data) else data)
        return root
    return build


def classes_tree(layout: dict[str, int], prefix="", fmt="PNG", suffix=".png", start=0):
    """{class: count} -> entries with distinct noise images."""
    entries, seed = {}, start
    for cls, count in layout.items():
        for i in range(count):
            entries[f"{prefix}{cls}/img_{i:03d}{suffix}"] = image_bytes(seed, fmt)
            seed += 1
    return entries


class _RawName(zipfile.ZipInfo):
    """A zip entry whose name bytes are written as given, without the UTF-8 flag (as many tools do)."""

    def __init__(self, name, raw: bytes):
        super().__init__(name, date_time=(2024, 5, 1, 12, 0, 0))
        self._raw = raw

    def _encodeFilenameFlags(self):
        return self._raw, self.flag_bits & ~0x800


def zipped(entries: dict, name="photos.zip", encoding="utf-8", flag=False):
    """A zip of {name: bytes}; names written in ``encoding`` without the UTF-8 flag unless ``flag``."""
    def build(tmp):
        out = tmp / name
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, data in entries.items():
                data = data() if callable(data) else data
                if flag or rel.isascii():
                    archive.writestr(rel, data)
                else:
                    archive.writestr(_RawName(rel, rel.encode(encoding)), data)
        return out
    return build


def motion_photo(seed):
    """A phone 'motion photo': a complete JPEG with an MP4 video appended after its end marker."""
    video = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + np.random.default_rng(seed).bytes(30_000)
    return image_bytes(seed, "JPEG", quality=90) + video


def rotated_jpeg(seed):
    """A 48x24 JPEG whose EXIF says 'rotate 90': phones store portraits this way."""
    image = noise(seed, (48, 24))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def heic(seed):
    import pillow_heif
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    noise(seed, (64, 48)).save(buffer, "HEIF")
    return buffer.getvalue()


def avif(seed):
    buffer = io.BytesIO()
    noise(seed, (64, 48)).save(buffer, "AVIF")
    return buffer.getvalue()


def nfd(text):
    import unicodedata
    return unicodedata.normalize("NFD", text)


# --- the cases -----------------------------------------------------------------------------------------------

CRM = tickets()
CRM_TEAMS = {team: 12 for team in TEAMS}


def _no_team_name():
    return support_tickets().rename(columns={"Assigned team": "Routed to"})


def _two_label_names():
    frame = support_tickets()
    frame["Category"] = frame["Assigned team"].map({"Billing": "Money", "Shipping": "Delivery", "Technical": "Device",
                                                   "Account": "Login", "Returns": "Money"})
    frame.loc[frame.index[::3], "Category"] = "Other"  # a different grouping than the team
    return frame


def _label_and_label_text():
    frame = simple_rows()().rename(columns={"label": "label_text"})
    frame.insert(1, "label", frame["label_text"].map({"billing": 0, "shipping": 1, "technical": 2}))
    return frame


def _variants():
    frame = simple_rows(per_class=6, classes=("billing", "shipping"))()
    frame.loc[0:2, "label"] = ["Billing", "BILLING ", "billing"]
    frame.loc[6:8, "label"] = ["Shipping", "shipping", "SHIPPING"]
    return frame


def _missing_markers():
    frame = simple_rows(per_class=8, classes=("billing", "shipping"))()
    markers = ["#N/A", "N/A", "NULL", "nan", "-", "None"]
    extra = pd.DataFrame({"text": [f"an unlabelled message {i}" for i in range(len(markers))], "label": markers})
    return pd.concat([frame, extra], ignore_index=True)


def _multi_few():
    frame = simple_rows(per_class=20, classes=("billing", "shipping", "technical"))()
    frame.loc[[3, 30], "label"] = ["billing, shipping", "shipping; technical"]
    return frame


def _multi_many():
    frame = simple_rows(per_class=10, classes=("billing", "shipping", "technical"))()
    frame.loc[::4, "label"] = "billing, shipping"
    return frame


def _json_list_labels():
    frame = simple_rows(per_class=10, classes=("billing", "shipping"))()
    frame.loc[::2, "label"] = '["billing", "shipping"]'
    return frame


def _repeated_header(tmp):
    first = simple_rows(per_class=6)().iloc[:9]
    second = simple_rows(per_class=6)().iloc[9:]
    path = tmp / "pasted.csv"
    path.write_text(first.to_csv(index=False) + second.to_csv(index=False) + second.head(0).to_csv(index=False))
    return path


def _excel_title_csv(tmp):
    """What Excel writes for a sheet with a title in A1 and a blank row under it."""
    frame = support_tickets(per_team=6)
    body = frame.to_csv(index=False, lineterminator="\r\n")
    width = len(frame.columns)
    path = tmp / "tickets_export.csv"
    path.write_bytes(("Helpdesk export - March 2024" + "," * (width - 1) + "\r\n" + "," * (width - 1) + "\r\n"
                      + body).encode("utf-8-sig"))
    return path


def _sep_line(tmp):
    frame = simple_rows(per_class=8)()
    frame["amount"] = [f"{i},5" for i in range(len(frame))]  # a decimal comma, as in a European locale
    path = tmp / "semicolons.csv"
    path.write_bytes(("sep=;\r\n" + frame.to_csv(index=False, sep=";", lineterminator="\r\n")).encode("utf-8-sig"))
    return path


def _sep_line_bad_class(tmp):
    path = tmp / "semi.csv"
    rows = ["sep=;", "text;department"] + [f"message {i} about money;billing" for i in range(6)] + ["odd one;legal"]
    path.write_text("\n".join(rows) + "\n")
    return path


def _metadata_lines(tmp):
    path = tmp / "crm.csv"
    frame = support_tickets(per_team=5)
    path.write_text("Exported by: jane.doe@example.com\nDate: 2024-03-01\n" + frame.to_csv(index=False))
    return path


def _monthly():
    return {month: support_tickets(per_team=4, seed=m) for m, month in enumerate(("Jan", "Feb", "Mar"))}


def _monthly_and_summary():
    sheets = _monthly()
    sheets["Summary"] = pd.DataFrame({"Team": list(TEAMS), "Tickets": [12] * 5})
    return sheets


def _shuffled_columns():
    sheets = _monthly()
    sheets["Feb"] = sheets["Feb"][list(reversed(sheets["Feb"].columns))]
    return sheets


def _duplicates_rare(tmp):
    path = tmp / "dups.csv"
    rows = ["text,label"] + [f"message {i} about money,billing" for i in range(6)] + ["legal question,legal"] * 3
    path.write_text("\n".join(rows) + "\n")
    return path


def _title_then_rare(tmp):
    path = tmp / "titled.csv"
    rows = ["Tickets by department,", "text,department"] + [f"message {i} about money,billing" for i in range(6)] + \
        ["one about the law,legal"]
    path.write_text("\n".join(rows) + "\n")
    return path


def _home_tilde(tmp):
    simple_rows()().to_csv(tmp / "mine.csv", index=False)
    return Path("~/mine.csv")


def _split_tree():
    entries = classes_tree({"cat": 6, "dog": 6}, prefix="train/")
    entries.update(classes_tree({"cat": 2, "dog": 2}, prefix="test/", start=100))
    return entries


def _three_split_tree(prefix=""):
    entries = classes_tree({"cat": 6, "dog": 6}, prefix=f"{prefix}train/")
    entries.update(classes_tree({"cat": 2, "dog": 2}, prefix=f"{prefix}val/", start=100))
    entries.update(classes_tree({"cat": 3, "dog": 3}, prefix=f"{prefix}test/", start=200))
    return entries


def _class_first_splits():
    entries = {}
    for c, cls in enumerate(("cat", "dog")):
        entries.update(classes_tree({f"{cls}/train": 5}, start=10 * c))
        entries.update(classes_tree({f"{cls}/test": 2}, start=100 + 10 * c))
    return entries


def _non_ascii_classes():
    return classes_tree({"café": 4, "crème brûlée": 4, "日本茶": 4})


def _legacy_names():
    return classes_tree({"résumé": 4, "lettre": 4})


def _case_folders():
    return {**classes_tree({"cat": 4, "dog": 4}), **classes_tree({"Cat": 2, "cats": 2}, start=50)}


def _nfd_folders():
    return {**classes_tree({"café": 3, "thé": 4}), **classes_tree({nfd("café"): 3}, start=50)}


def _phone(kind):
    makers = {"png_as_jpg": lambda s: image_bytes(s, "PNG"), "motion": motion_photo, "rotated": rotated_jpeg,
              "heic": heic, "avif": avif}
    suffix = {"png_as_jpg": ".jpg", "motion": ".jpg", "rotated": ".jpg", "heic": ".heic", "avif": ".avif"}[kind]

    def entries():
        out = classes_tree({"cat": 4, "dog": 4})
        out[f"cat/phone_photo{suffix}"] = lambda: makers[kind](999)
        return out
    return entries


def _duplicate_images():
    out = classes_tree({"cat": 4, "dog": 4})
    out["cat/copy of img_000.png"] = out["cat/img_000.png"]
    out["cat/img_000 (1).png"] = out["cat/img_000.png"]
    return out


def _leaky_splits():
    out = _three_split_tree()
    out["val/cat/same_as_train.png"] = out["train/cat/img_000.png"]
    out["test/dog/renamed.png"] = out["train/dog/img_001.png"]
    return out


def _image_in_two_classes():
    out = classes_tree({"cat": 4, "dog": 4})
    out["dog/mislabelled.png"] = out["cat/img_001.png"]
    return out


def _split_folders_without_classes():
    train = {f"train/{i}.png": image_bytes(i) for i in range(6)}
    return {**train, **{f"test/{i}.png": image_bytes(50 + i) for i in range(3)}}


def _wrapped_deep():
    out = {f"Export 2024/My Photos/dataset/{k}": v for k, v in classes_tree({"cat": 4, "dog": 4}).items()}
    out["Export 2024/README.txt"] = b"photos from the field trip"
    return out


def _mac_zip():
    out = classes_tree({"cat": 4, "dog": 4})
    out["__MACOSX/cat/._img_000.png"] = b"\x00\x05\x16\x07 resource fork"
    out["cat/.DS_Store"] = b"\x00\x00\x00\x01Bud1"
    out["._cat"] = b"\x00\x05\x16\x07"
    return out


def _sidecars():
    out = classes_tree({"cat": 4, "dog": 4})
    out["cat/img_000.png.json"] = b'{"photoTakenTime": {"timestamp": "1700000000"}}'
    return out


def _no_suffix_photos():
    out = classes_tree({"cat": 4, "dog": 4})
    out["cat/IMG_20240501_120000"] = image_bytes(777, "JPEG")
    out["dog/PHOTO.JFIF"] = image_bytes(778, "JPEG")
    out["dog/SCAN.JPG"] = image_bytes(779, "JPEG")
    return out


def _truncated_webp():
    out = classes_tree({"cat": 4, "dog": 4})
    data = image_bytes(5, "WEBP")
    out["cat/cut.webp"] = data[: len(data) // 2]
    return out


def _val_folder_with_copies(tmp):
    train = tree(classes_tree({"cat": 5, "dog": 5}))(tmp)
    val = tmp / "holdout"
    for rel, data in {**classes_tree({"cat": 2, "dog": 2}, start=100),
                      "cat/copy.png": (train / "cat" / "img_000.png").read_bytes()}.items():
        (val / rel).parent.mkdir(parents=True, exist_ok=True)
        (val / rel).write_bytes(data)
    return train


def _chat_frame(prompt="question", response="answer", extra=None, n=12):
    def frame():
        rows = {prompt: [f"What is the warranty on model K{i}?" for i in range(n)],
                response: [f"Model K{i} has a two-year warranty from the day of purchase." for i in range(n)]}
        if extra:
            rows.update(extra(n))
        return pd.DataFrame(rows)
    return frame


def _with_markers(n_marked):
    def extra(n):
        return {"answer": [(f"Model K{i} is covered for two years.<|im_end|>" if i < n_marked else
                            f"Model K{i} is covered for two years.") for i in range(n)]}
    return extra


def _templated_text(n):
    return {"answer": [f"<|im_start|>assistant\nModel K{i} is covered.<|im_end|>" for i in range(n)]}


def _inst_text(n):
    return {"question": [f"[INST] What about model K{i}? [/INST]" for i in range(n)]}


def _answers_na(n):
    return {"answer": ["N/A" if i % 4 == 0 else f"Model K{i} is covered for two years." for i in range(n)]}


def _split_column():
    frame = simple_rows(per_class=6)()
    frame["split"] = ["train", "train", "test"] * (len(frame) // 3)
    return frame


def _constant_text():
    frame = simple_rows(per_class=6)()
    frame["text"] = "see attachment"
    return frame


def _text_is_label():
    frame = simple_rows(per_class=6)()
    frame["text"] = frame["label"]
    return frame


def _constant_label():
    frame = support_tickets(per_team=4)
    frame["Assigned team"] = "Billing"
    return frame


def _only_meta():
    frame = support_tickets(per_team=6)[["Body", "Channel"]]
    return frame


def _ids_dates_text():
    frame = support_tickets(per_team=4)[["ticket_id", "created_at", "Body"]]
    return frame


def _two_messages():
    frame = support_tickets(per_team=6)
    return pd.DataFrame({"first_message": frame["Body"], "last_message": frame["Body"].str.upper(),
                         "category": frame["Assigned team"]})


def _excel_int_float_labels():
    return [["text", "rating"]] + [[f"a review that says {w} {i}", v] for i, (w, v) in enumerate(
        [("bad", 1), ("bad", 1.0), ("bad", 1), ("good", 2), ("good", 2.0), ("good", 2)] * 3)]


def _parquet(tmp):
    frame = simple_rows(per_class=6)()
    frame["label"] = frame["label"].astype("category")
    frame.to_parquet(tmp / "data.parquet")
    return tmp / "data.parquet"


def _jsonl_nulls():
    rows = [{"text": f"message {i} about {c}", "label": c} for c in ("billing", "shipping") for i in range(6)]
    rows += [{"text": "nobody labelled this", "label": None}, {"text": None, "label": "billing"}]
    return rows


def _yes_definitely():
    frame = simple_rows(per_class=6, classes=("yes", "no"))()
    frame.loc[frame["label"] == "yes", "label"] = "Yes, definitely"
    return frame


def _slash_class():
    frame = simple_rows(per_class=6, classes=("billing", "shipping"))()
    frame.loc[frame["label"] == "shipping", "label"] = "Returns/Refunds"
    return frame


def _plural_labels():
    frame = simple_rows(per_class=6, classes=("bug", "feature"))()
    frame.loc[[0, 1], "label"] = "bugs"
    frame.loc[[7], "label"] = "features"
    return frame


def _underscores():
    frame = simple_rows(per_class=6, classes=("customer service", "sales"))()
    frame.loc[[0, 1], "label"] = "customer_service"
    frame.loc[[2], "label"] = "Customer-Service"
    return frame


def _ratings_named_score():
    return product_reviews().rename(columns={"stars": "score"})


def _reviews_with_summary():
    frame = product_reviews()
    return frame[["review_id", "title", "review_text", "stars", "verified"]]


def _na_text():
    frame = simple_rows(per_class=8, classes=("billing", "shipping"))()
    frame.loc[[0, 9], "text"] = ["N/A", "#N/A"]
    return frame


def _tsv_title(tmp):
    frame = simple_rows()()
    path = tmp / "sheet.tsv"
    path.write_text("Team inbox\t\nExported from Google Sheets\t\n" + frame.to_csv(index=False, sep="\t"))
    return path


def _tab_pasted_header(tmp):
    path = tmp / "inbox.csv"
    frame = support_tickets(per_team=4)
    text = frame.to_csv(index=False)
    header, _, rest = text.partition("\n")
    lines = rest.splitlines()
    path.write_text(header + "\n" + "\n".join(lines[:10] + [header] + lines[10:]) + "\n")
    return path


def _chat_context():
    def frame():
        n = 12
        return pd.DataFrame({"User Question": [f"Can I return model K{i}?" for i in range(n)],
                             "Context": [f"Policy {i}: returns within 30 days." for i in range(n)],
                             "Agent Answer": [f"Yes, model K{i} can be returned within 30 days." for i in range(n)]})
    return frame


def _squad_like():
    def frame():
        n = 12
        return pd.DataFrame({"id": [f"q{i}" for i in range(n)],
                             "question": [f"When did store {i} open?" for i in range(n)],
                             "background": [f"Store {i} opened in {1990 + i} in the old town." for i in range(n)],
                             "answer": [f"In {1990 + i}." for i in range(n)]})
    return frame


def _intents():
    rng = np.random.default_rng(3)
    intents = {"check_balance": "how much money is left on my card {n}", "lost_card": "I lost my card {n} yesterday",
               "transfer": "send {n} euros to my sister", "opening_hours": "is branch {n} open on sunday"}
    rows = [{"session_id": f"s-{rng.integers(10**6)}", "timestamp": f"2024-02-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
             "utterance": text.format(n=100 + i), "intent": intent, "confidence": round(float(rng.random()), 3)}
            for intent, text in intents.items() for i in range(8)]
    return pd.DataFrame(rows)


def _airline_tweets():
    rng = np.random.default_rng(4)
    moods = {"negative": "my flight {n} was delayed again and nobody helped",
             "neutral": "what time does flight {n} board", "positive": "great crew on flight {n}, thank you"}
    rows = [{"tweet_id": int(5e17 + i + 100 * k), "airline_sentiment": mood,
             "airline": ["United", "Delta", "Virgin America", "US Airways"][int(rng.integers(4))],
             "retweet_count": int(rng.integers(0, 3)), "text": "@airline " + text.format(n=200 + i),
             "tweet_created": f"2015-02-24 11:{i:02d}:00 -0800", "user_timezone": "Eastern Time (US & Canada)"}
            for k, (mood, text) in enumerate(moods.items()) for i in range(10)]
    return pd.DataFrame(rows)


def _kaggle_spam(tmp):
    """The classic spam.csv: v1 (ham/spam), v2 (the text), three empty unnamed columns, Windows-1252."""
    lines = ["v1,v2,,,"] + [f"ham,Are we still meeting at {i} for lunch caf\xe9?,,," for i in range(10)] + \
        [f"spam,WINNER!! Claim your prize {i} now by calling 0800 {i}{i}{i},,," for i in range(10)]
    path = tmp / "spam.csv"
    path.write_bytes("\r\n".join(lines).encode("cp1252"))
    return path


def _french_semicolons(tmp):
    rows = ["sep=;", "Message;Catégorie"] + [f"Ma facture {i} est fausse;Facturation" for i in range(6)] + \
        [f"Mon colis {i} est en retard;Réclamation" for i in range(6)]
    path = tmp / "export_fr.csv"
    path.write_bytes("\r\n".join(rows).encode("cp1252"))
    return path


def _api_json(tmp):
    records = [{"id": i, "text": f"message {i} about {c}", "label": c} for i, c in
               enumerate(["billing", "shipping"] * 6)]
    path = tmp / "api.json"
    path.write_text(json.dumps({"count": len(records), "next": None, "results": records}))
    return path


def _instructions_and_data():
    return {"Instructions": pd.DataFrame({"How to fill this in": ["One row per ticket.", "Use the team names."]}),
            "Data": simple_rows()()}


def _trailing_commas(tmp):
    path = tmp / "excel.csv"
    rows = [f"message {i} about {c},{c},,," for i, c in enumerate(["billing", "shipping"] * 6)]
    path.write_text("text,label,,,\n" + "\n".join(rows) + "\n,,,,\n,,,,\n")
    return path


def _gemini_chats():
    return [{"contents": [{"role": "user", "parts": [{"text": f"Is model K{i} dishwasher safe?"}]},
                          {"role": "model", "parts": [{"text": f"No, model K{i} should be washed by hand."}]}]}
            for i in range(12)]


def _windows_zip(tmp):
    out = tmp / "windows.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for rel, data in classes_tree({"cat": 4, "dog": 4}).items():
            archive.writestr(_RawName(rel, rel.replace("/", "\\").encode()), data)
    return out


def _roboflow():
    out = {}
    for split, count, start in (("train", 6, 0), ("valid", 2, 100), ("test", 2, 200)):
        out.update(classes_tree({"cat": count, "dog": count}, prefix=f"{split}/", start=start))
    out["README.roboflow.txt"] = b"Exported via roboflow.com"
    out["README.dataset.txt"] = b"# pets"
    return out


def _videos_only_class():
    out = classes_tree({"cat": 4, "dog": 4})
    out["bird/clip_001.mp4"] = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
    out["bird/clip_002.mov"] = b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 64
    return out


def _scans():
    out = classes_tree({"cat": 4, "dog": 4})
    deep = io.BytesIO()
    Image.fromarray((np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60)).save(deep, "TIFF")
    out["cat/scan_16bit.tif"] = deep.getvalue()
    gif = io.BytesIO()
    frames = [noise(900 + i, (32, 32)).convert("P") for i in range(3)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    out["dog/animated.gif"] = gif.getvalue()
    out["dog/paint.bmp"] = image_bytes(901, "BMP")
    return out


def _csv_labels_layout():
    out = {f"data/images/{i:04d}.jpg": image_bytes(i, "JPEG") for i in range(8)}
    lines = [f"{i:04d}.jpg,{'cat' if i % 2 else 'dog'}" for i in range(8)]
    out["data/labels.csv"] = ("image,label\n" + "\n".join(lines) + "\n").encode()
    return out


def _hf_parquet(tmp):
    frame = pd.DataFrame({"text": [f"movie review {i}: {'loved' if i % 2 else 'hated'} it" for i in range(20)],
                          "label": [i % 2 for i in range(20)]})
    frame.to_parquet(tmp / "train-00000-of-00001.parquet")
    return tmp / "train-00000-of-00001.parquet"


def _zendesk():
    frame = support_tickets(per_team=6)
    n = len(frame)
    return pd.DataFrame({"Id": range(1, n + 1), "Requester": [f"user{i}@example.com" for i in range(n)],
                         "Subject": frame["Subject"], "Description": frame["Body"], "Group": frame["Assigned team"],
                         "Satisfaction Score": [["Good", "Bad", "Offered", "Not Offered"][i % 4] for i in range(n)],
                         "Via": frame["Channel"]})


SATISFACTION = ["Very satisfied", "Satisfied", "Neutral", "Dissatisfied"]


def _surveymonkey(tmp):
    n = 32
    head = ["Respondent ID", "Start Date", "IP Address", "Email Address", "How satisfied are you with our service?",
            "Any other comments?"]
    sub = ["", "", "", "", "Response", "Open-Ended Response"]
    rows = [[11400000000 + i, f"03/{1 + i % 28:02d}/2024 10:{i % 60:02d}:00 AM", f"10.0.{i}.{i * 3 % 255}",
             f"p{i}@example.org", SATISFACTION[i % 4],
             f"The agent was {['great', 'fine', 'okay', 'slow'][i % 4]} when I called about order {i}"]
            for i in range(n)]
    return pd.DataFrame([sub] + rows, columns=head)


def _qualtrics(tmp):
    head = ["StartDate", "ResponseId", "Q1", "Q2_TEXT"]
    rows = [["Start Date", "Response ID", "Which team helped you?", "Describe your request"],
            ['{"ImportId":"startDate"}', '{"ImportId":"_recordId"}', '{"ImportId":"QID1"}', '{"ImportId":"QID2_TEXT"}']]
    rows += [[f"2024-03-{1 + i % 28:02d} 10:00:00", f"R_{t}{i:05x}", team, TEAMS[team][i % 6].format(n=i) + f" ({i})"]
             for t, team in enumerate(("Billing", "Shipping")) for i in range(8)]
    path = tmp / "qualtrics.csv"
    pd.DataFrame(rows, columns=head).to_csv(path, index=False)
    return path


def _seq2seq():
    return pd.DataFrame({"input": [f"translate to French: good morning number {i}" for i in range(20)],
                         "target": [f"bonjour numéro {i}, comment allez-vous" for i in range(20)]})


def _quora():
    return pd.DataFrame({"qid": [f"{i * 7919:020x}" for i in range(30)],
                         "question_text": [f"Why do people {'really ' * (i % 2)}ask question {i}?" for i in range(30)],
                         "target": [i % 2 for i in range(30)]})


def _typo_labels():
    frame = simple_rows(per_class=10, classes=("billing", "shipping"))()
    frame.loc[[10, 11], "label"] = "shiping"
    return frame


def _bank():
    shops = {"Groceries": "TESCO STORE", "Transport": "SHELL FUEL", "Subscriptions": "NETFLIX.COM",
             "Shopping": "AMAZON MKTPLACE"}
    rows = [{"Date": f"2024-01-{1 + i % 28:02d}", "Description": f"{shop} {1000 + i} card 4421",
             "Amount": f"-{i}.99", "Balance": f"{2000 - i * 3}.10", "Category": cat}
            for cat, shop in shops.items() for i in range(8)]
    return pd.DataFrame(rows)


def _single_item_lists():
    return [{"text": f"a message about {c} number {i}", "label": [c]} for c in ("billing", "shipping")
            for i in range(8)]


def _hierarchy():
    out = {}
    for group, classes in {"animals": ("cat", "dog"), "vehicles": ("car", "bus")}.items():
        out.update(classes_tree({f"{group}/{c}": 3 for c in classes}, start=10 * len(out)))
    return out


def _swapped():
    frame = simple_rows(per_class=8)()
    return frame.rename(columns={"text": "label", "label": "text"})


def _tweets():
    return pd.DataFrame({"user": [f"user{i % 5}" for i in range(40)],
                         "tweet": [f"I {'love' if i % 2 else 'hate'} this phone, day {i}" for i in range(40)],
                         "polarity": [i % 2 for i in range(40)]})


def _catalog():
    return pd.DataFrame({"title": [f"product title number {i} in the shop" for i in range(300)],
                         "Category": [f"cat{i % 150}" for i in range(300)]})


def _unbalanced(sep, name):
    def build(tmp):
        rows = [f"text{sep}label"] + [f"message {i} about money{sep}billing" for i in range(10)]
        rows[3] = f'"Best kettle ever{sep}billing'
        rows += [f"parcel {i} is late{sep}shipping" for i in range(10)]
        rows[15] = f'I said "no" to the "offer{sep}shipping'  # the next quote closes the stray one, silently
        (tmp / name).write_text("\n".join(rows) + "\n")
        return tmp / name
    return build


def _multiline_reviews(tmp):
    frame = pd.DataFrame({"review": [f"Hi,\nthe kettle {i}, sadly,\nbroke after a week.\nBye" if i % 2 else
                                     f"Great kettle {i},\nboils fast,\nlove it" for i in range(20)],
                          "sentiment": ["negative" if i % 2 else "positive" for i in range(20)]})
    frame.to_csv(tmp / "reviews.csv", index=False)
    return tmp / "reviews.csv"


def _with_totals():
    rows = [[f"ticket {i} about {t.lower()}", t, 1] for t in ("Billing", "Shipping") for i in range(8)]
    return [["Ticket", "Team", "Count"]] + rows + [["Total", "", 16]]


def _na_labels():
    frame = simple_rows(per_class=8, classes=("billing", "shipping"))()
    frame.loc[[0, 9], "label"] = ["NA", "na"]
    return frame


def _region_codes():
    return pd.DataFrame({"text": [f"a question from a customer in region {c} number {i}" for c in ("EU", "NA", "APAC")
                                  for i in range(6)],
                         "label": [c for c in ("EU", "NA", "APAC") for _ in range(6)]})


def _hf_named_parquet(tmp):
    import datasets
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    data = datasets.Dataset.from_dict({"text": [f"the film {i} was {'great' if i % 2 else 'dull'}" for i in range(20)],
                                       "label": [i % 2 for i in range(20)]}, features=features)
    data.to_parquet(tmp / "imdb.parquet")
    return tmp / "imdb.parquet"


def _slack():
    return [{"type": "message", "user": f"U0{i % 3}", "text": f"deploy {i} finished on staging, all green",
             "ts": f"{1700000000 + i}.000200"} for i in range(30)]


def _support_log():
    n = 30
    return pd.DataFrame({"customer_name": [f"Person {i}" for i in range(n)],
                         "customer_message": [f"My order {i} arrived broken, I want a refund" for i in range(n)],
                         "agent_reply": [f"Sorry, refund {i} issued" for i in range(n)],
                         "category": [["refund", "shipping", "other"][i % 3] for i in range(n)]})


def _polarity_symbols():
    return pd.DataFrame({"sentiment": [["+", "-", "0"][i % 3] for i in range(30)],
                         "tweet": [f"tweet number {i} about the new phone" for i in range(30)]})


def _none_intent():
    return pd.DataFrame({"intent": [["refund", "none", "none", "shipping"][i % 4] for i in range(32)],
                         "utterance": [f"utterance number {i} from the chat widget" for i in range(32)]})


def _faq():
    topics = {"warranty": "Is model K{i} covered by the warranty?", "descaling": "How often do I descale kettle K{i}?",
              "app": "Why does the app not find kettle K{i}?"}
    rows = [{"question": q.format(i=i), "answer": f"For K{i}: see the {topic} page, section {i}.", "category": topic}
            for topic, q in topics.items() for i in range(8)]
    return pd.DataFrame(rows)


def _crm(kind):
    """Exports of five helpdesk/CRM tools, with their own column names, around the same tickets."""
    def frame():
        base = support_tickets(per_team=8)
        n, team = len(base), base["Assigned team"]
        agents = [f"agent{i % 3}" for i in range(n)]
        if kind == "intercom":
            return pd.DataFrame({"Conversation ID": range(n), "Created at": base.created_at, "Assignee": agents,
                                 "Tags": team, "Conversation rating": [1 + i % 5 for i in range(n)],
                                 "First message": base.Body})
        if kind == "freshdesk":
            return pd.DataFrame({"Ticket ID": range(n), "Subject": base.Subject, "Description": base.Body,
                                 "Status": base.Status, "Priority": base.Priority, "Source": base.Channel,
                                 "Type": [["Question", "Incident", "Problem"][i % 3] for i in range(n)],
                                 "Agent": agents, "Group": team, "Created time": base.created_at})
        if kind == "jira":
            kinds = [["Bug", "Task", "Story"][i % 3] for i in range(n)]
            return pd.DataFrame({"Issue key": [f"PROJ-{i}" for i in range(n)], "Summary": base.Subject,
                                 "Description": base.Body, "Issue Type": kinds,
                                 "Component/s": team, "Reporter": agents, "Created": base.created_at})
        return pd.DataFrame({"Case Number": [f"{i:08d}" for i in range(n)], "Subject": base.Subject,
                             "Description": base.Body, "Case Origin": base.Channel, "Case Reason": team,
                             "Status": base.Status})
    return frame


def _turn_log(with_id=True, label=False):
    def frame():
        rows = []
        for c in range(10):
            turns = [("Customer", f"Hi, my order {c} is late"), ("Customer", "Any news?"), ("System", "Agent joined"),
                     ("Agent", f"Sorry! Order {c} ships today.")]
            for k, (who, text) in enumerate(turns):
                row = {"conversation_id": f"c{c}", "timestamp": f"2024-03-01 10:{c:02d}:{k * 10:02d}",
                       "speaker": who, "message": text}
                if label:
                    row["intent"] = ["late_order", "refund"][c % 2]
                rows.append(row)
        out = pd.DataFrame(rows)
        return out if with_id else out.drop(columns="conversation_id")
    return frame


def _first_user_content(data):
    return data.train[0]["messages"][0]["content"]


def _joined(words):
    def check(data):
        every = list(data.train["messages"]) + list(data.validation["messages"])
        user = next(t["content"] for t in every[0] if t["role"] == "user")
        for word in words:
            assert word in user, (word, user)
    return check


def _rotation_applied(data):
    paths = [p for p in list(data.train["image"]) + list(data.validation["image"]) if "phone_photo" in p]
    assert paths and open_rgb(paths[0]).size == (24, 48)


def _kept(name):
    def check(data):
        paths = list(data.train["image"]) + list(data.validation["image"])
        assert any(p.endswith(name) for p in paths), name
        assert open_rgb(next(p for p in paths if p.endswith(name))).mode == "RGB"
    return check


def _class_names_are_clean(data):
    assert all("\u0300" not in n and "\u0301" not in n for n in data.labels)


SPLIT_WARN = ("split_names_as_classes",)

# (id, build(tmp) -> path, load_data kwargs, expected outcome)
CASES = [
    # --- which column is the label, which the text -------------------------------------------------------
    ("crm export: team named, channel/priority/status beside it", csv_of(CRM), {},
     Trains("text-classification", {"text": "Body", "label": "Assigned team"}, CRM_TEAMS,
            words=("'Channel'", "channel", "priority"))),
    ("crm export: team column not named like a label", csv_of(_no_team_name), {},
     Trains("text-classification", {"text": "Body", "label": "Routed to"}, CRM_TEAMS)),
    ("crm export as xlsx", workbook({"Tickets": CRM}), {},
     Trains("text-classification", {"text": "Body", "label": "Assigned team"}, CRM_TEAMS)),
    ("crm export: two label-like columns", csv_of(_two_label_names), {},
     Refuses("ambiguous_label", ("'Assigned team'", "'Category'", "will not guess"),
             ("data.columns.label", "label' list"), options=("Assigned team", "Category"))),
    ("crm export: two label-like columns, label chosen", csv_of(_two_label_names),
     {"columns": {"label": "Category"}}, Trains("text-classification", {"text": "Body", "label": "Category"})),
    ("crm export: label chosen on the CLI, text detected", csv_of(CRM), {"columns": {"label": "Priority"}},
     Trains("text-classification", {"text": "Body", "label": "Priority"})),
    ("review export: stars, helpful votes, verified", csv_of(lambda: product_reviews()), {},
     Trains("text-classification", {"text": "review_text", "label": "stars"},
            {str(s): 10 for s in range(1, 6)})),
    ("review export: rating called score", csv_of(_ratings_named_score), {},
     Trains("text-classification", {"text": "review_text", "label": "score"})),
    ("review export: title beside the review", csv_of(_reviews_with_summary), {},
     Trains("text-classification", {"text": "review_text", "label": "stars"}, words=("'title'",))),
    ("label and label_text hold the same classes", csv_of(_label_and_label_text), {},
     Trains("text-classification", {"text": "text", "label": "label_text"},
            {"billing": 8, "shipping": 8, "technical": 8})),
    ("two unnamed category columns",
     csv_of(renamed(with_column(simple_rows(), "kind2", lambda f: ["x", "y"] * (len(f) // 2)), label="kind")), {},
     Refuses("ambiguous_label", ("'kind'", "'kind2'"), ("--set",), options=("kind", "kind2"))),
    ("only a channel beside the text", csv_of(_only_meta), {},
     Refuses("label_guess", ("'Channel'", "channel", "without your say"), ("data.columns.label=Channel",),
             options=("Channel",))),
    ("only a channel beside the text, chosen", csv_of(_only_meta), {"columns": {"label": "Channel"}},
     Trains("text-classification", {"text": "Body", "label": "Channel"})),
    ("slack export: user, text, ts", jsonl("slack.jsonl", _slack()), {},
     Refuses("label_guess", ("'user'",), ("label",))),
    ("ids, dates and text only", csv_of(_ids_dates_text), {}, Refuses("no_task", ("'ticket_id'",), ("choose",))),
    ("two message columns of the same length", csv_of(_two_messages), {},
     Refuses("ambiguous_text", ("'first_message'", "'last_message'"), ("data.columns.text",),
             options=("first_message", "last_message"))),
    ("label column constant", csv_of(_constant_label), {"columns": {"label": "Assigned team"}},
     Refuses("single_class", ("'Billing'",), ("other class",))),
    ("intercom export: tags and a rating", csv_of(_crm("intercom")), {},
     Refuses("ambiguous_label", ("'Tags'", "'Conversation rating'"), ("label",),
             options=("Tags", "Conversation rating"))),
    ("freshdesk export: type and group", csv_of(_crm("freshdesk")), {},
     Refuses("ambiguous_label", ("'Type'", "'Group'"), ("label",), options=("Type", "Group"))),
    ("jira export: issue type and component", csv_of(_crm("jira")), {},
     Refuses("ambiguous_label", ("'Issue Type'", "'Component/s'"), ("label",))),
    ("salesforce cases: reason beside origin and status", csv_of(_crm("salesforce")), {},
     Trains("text-classification", {"text": "Description", "label": "Case Reason"}, {t: 8 for t in TEAMS})),
    # --- class names -----------------------------------------------------------------------------------------
    ("Billing / billing / BILLING", csv_of(_variants), {},
     Trains("text-classification", classes={"billing": 6, "shipping": 6}, warnings=("label_variants",),
            words=("'BILLING' (1)", "'Billing' (1)"))),
    ("labels 1 and 1.0 from a spreadsheet", workbook({"Sheet1": _excel_int_float_labels()}), {},
     Trains("text-classification", {"label": "rating"}, {"1": 9, "2": 9})),
    ("labels 1, 1.0 and ' 1' in a csv",
     lines_csv("n.csv", "text,label", [(f"row {i} text here", v) for i, v in
                                       enumerate(["1", "1.0", " 1", "2", "2.0", "2"] * 3)]), {},
     Trains("text-classification", classes={"1": 9, "2": 9}, warnings=("label_variants",))),
    ("missing-value markers as labels", csv_of(_missing_markers), {},
     Trains("text-classification", classes={"billing": 8, "shipping": 8}, warnings=("missing_values",),
            words=("#N/A",))),
    ("missing-value markers as text", csv_of(_na_text), {},
     Trains("text-classification", classes={"billing": 7, "shipping": 7}, warnings=("missing_values",))),
    ("a few multi-label cells", csv_of(_multi_few), {},
     Trains("text-classification", classes={"billing": 19, "shipping": 19, "technical": 20},
            warnings=("multi_label",))),
    ("many multi-label cells", csv_of(_multi_many), {},
     Refuses("multi_label", ("several labels", "'billing, shipping'", "not supported yet"), ("one label per row",))),
    ("labels written as JSON lists", csv_of(_json_list_labels), {},
     Refuses("multi_label", ("not supported yet",), ("one label",))),
    ("'Yes, definitely' is one class", csv_of(_yes_definitely), {},
     Trains("text-classification", classes={"Yes, definitely": 6, "no": 6})),
    ("'Returns/Refunds' is one class", csv_of(_slash_class), {},
     Trains("text-classification", classes={"billing": 6, "Returns/Refunds": 6})),
    ("bug / bugs, feature / features", csv_of(_plural_labels), {},
     Trains("text-classification", classes={"bug": 6, "feature": 6}, warnings=("label_variants",))),
    ("customer_service / customer service", csv_of(_underscores), {},
     Trains("text-classification", classes={"customer service": 6, "sales": 6}, warnings=("label_variants",))),
    ("null labels in jsonl", jsonl("rows.jsonl", _jsonl_nulls()), {},
     Trains("text-classification", classes={"billing": 6, "shipping": 6}, warnings=("empty_cells",))),
    ("categorical parquet column", _parquet, {}, Trains("text-classification", classes={"billing": 6,
                                                                                        "shipping": 6,
                                                                                        "technical": 6})),
    # --- layouts people have ------------------------------------------------------------------------------------
    ("excel csv with a title row", _excel_title_csv, {},
     Trains("text-classification", {"text": "Body", "label": "Assigned team"}, {t: 6 for t in TEAMS},
            warnings=("title_rows",), words=("Helpdesk export",))),
    ("export with 'Exported by' lines", _metadata_lines, {},
     Trains("text-classification", {"text": "Body", "label": "Assigned team"}, {t: 5 for t in TEAMS},
            warnings=("title_rows",))),
    ("google sheets tsv with a title", _tsv_title, {},
     Trains("text-classification", classes={"billing": 8, "shipping": 8, "technical": 8},
            warnings=("title_rows",))),
    ("xlsx with a title and a blank row", workbook({"Report": CRM}, titles={"Report": [["Tickets, Q1 2024"], []]}),
     {}, Trains("text-classification", {"text": "Body", "label": "Assigned team"}, CRM_TEAMS,
                warnings=("title_rows",))),
    ("xlsx starting in B3", workbook({"Data": simple_rows()}, titles={"Data": [["Inbox"], []]}, offset_col=1), {},
     Trains("text-classification", classes={"billing": 8, "shipping": 8, "technical": 8})),
    ("excel 'sep=;' line", _sep_line, {},
     Trains("text-classification", {"text": "text", "label": "label"},
            {"billing": 8, "shipping": 8, "technical": 8}, words=("sep=;",))),
    ("repeated header rows", _repeated_header, {},
     Trains("text-classification", classes={"billing": 6, "shipping": 6, "technical": 6},
            warnings=("repeated_header",))),
    ("repeated header in a crm export", _tab_pasted_header, {},
     Trains("text-classification", {"label": "Assigned team"}, {t: 4 for t in TEAMS},
            warnings=("repeated_header",))),
    ("one sheet per month", workbook(_monthly()), {},
     Trains("text-classification", {"text": "Body", "label": "Assigned team"}, {t: 12 for t in TEAMS},
            words=("'Jan'", "'Mar'"))),
    ("sheets with columns in another order", workbook(_shuffled_columns()), {},
     Trains("text-classification", {"label": "Assigned team"}, {t: 12 for t in TEAMS})),
    ("monthly sheets and a summary sheet", workbook(_monthly_and_summary()), {},
     Refuses("several_sheets", ("'Summary'", "'Jan'", "different columns"), ("#Jan,Feb,Mar", "sheet"),
             options=("Jan", "Feb", "Mar", "Summary"))),
    ("a sheet chosen with book.xlsx#Feb", lambda tmp: workbook(_monthly_and_summary())(tmp).with_name("book.xlsx#Feb"),
     {}, Trains("text-classification", {"label": "Assigned team"}, {t: 4 for t in TEAMS})),
    ("the monthly sheets chosen with #Jan,Feb,Mar",
     lambda tmp: workbook(_monthly_and_summary())(tmp).with_name("book.xlsx#Jan,Feb,Mar"), {},
     Trains("text-classification", {"label": "Assigned team"}, {t: 12 for t in TEAMS})),
    ("a sheet chosen with sheet=", workbook(_monthly_and_summary()), {"sheet": "jan"},
     Trains("text-classification", {"label": "Assigned team"}, {t: 4 for t in TEAMS})),
    ("a sheet that does not exist", lambda tmp: workbook(_monthly())(tmp).with_name("book.xlsx#April"), {},
     Refuses("unknown_sheet", ("'April'", "'Jan'"), ("listed sheets",), options=("Jan", "Feb", "Mar"))),
    ("path with ~", _home_tilde, {},
     Trains("text-classification", classes={"billing": 8, "shipping": 8, "technical": 8})),
    # --- chat ------------------------------------------------------------------------------------------------
    ("question + context + answer", csv_of(_chat_context()), {},
     Trains("chat", {"prompt": "User Question", "input": "Context", "response": "Agent Answer"}, rows=12,
            check=_joined(["Can I return", "Policy"]))),
    ("question + background + answer", csv_of(_squad_like()), {},
     Trains("chat", {"prompt": "question", "input": "background", "response": "answer"}, rows=12,
            check=_joined(["When did", "opened in"]))),
    ("customer / agent roles", jsonl("support.jsonl", chats(("customer", "agent"))), {}, Trains("chat", rows=12)),
    ("client / support roles", jsonl("support.jsonl", chats(("Client", "Support"))), {}, Trains("chat", rows=12)),
    ("human / bot roles, ShareGPT keys",
     jsonl("sg.jsonl", chats(("human", "bot"), key_role="from", key_text="value", wrap="conversations")), {},
     Trains("chat", {"messages": "conversations"}, rows=12)),
    ("speaker / text keys", jsonl("log.jsonl", chats(("visitor", "operator"), key_role="speaker", key_text="text")),
     {}, Trains("chat", rows=12)),
    ("roles nobody maps", jsonl("de.jsonl", chats(("Kunde", "Mitarbeiter"))), {},
     Refuses("unknown_roles", ("'Kunde'", "'Mitarbeiter'"), ("'user'", "'assistant'"), ("bad_messages",))),
    ("tool turns", jsonl("tools.jsonl", chats() + [{"messages": [
        {"role": "user", "content": "weather?"}, {"role": "tool", "content": "{}"},
        {"role": "assistant", "content": "sunny"}]}]), {},
     Trains("chat", rows=12, warnings=("bad_messages",), words=("tool",))),
    ("template tokens in a few answers", csv_of(_chat_frame(extra=_with_markers(2))), {},
     Trains("chat", rows=10, warnings=("template_markers",))),
    ("text already chat-templated", csv_of(_chat_frame(extra=_templated_text)), {},
     Refuses("template_markers", ("<|im_start|>", "formatted"), ("plain turns",))),
    ("llama [INST] markers in prompts", csv_of(_chat_frame(extra=_inst_text)), {},
     Refuses("template_markers", ("[INST]",), ("template",))),
    ("answers 'N/A'", csv_of(_chat_frame(extra=_answers_na)), {},
     Trains("chat", rows=9, warnings=("missing_values",))),
    ("the same answer everywhere", csv_of(_chat_frame(extra=lambda n: {"answer": ["Thank you!"] * n})), {},
     Trains("chat", rows=12, warnings=("constant_response",))),
    ("FAQ: question, answer and category", csv_of(_faq), {},
     Trains("chat", {"prompt": "question", "response": "answer"}, rows=24,
            words=("Not used: 'category'", "text-classification"))),
    ("FAQ: question, answer and category, classify chosen", csv_of(_faq), {"task": "text-classification"},
     Trains("text-classification", {"text": "question", "label": "category"},
            {"warranty": 8, "descaling": 8, "app": 8})),
    ("chat log, one turn per row, with a conversation id", csv_of(_turn_log()), {},
     Trains("chat", {"speaker": "speaker", "content": "message", "conversation": "conversation_id"}, rows=10,
            warnings=("unknown_speaker",),
            check=lambda d: [t["role"] for t in d.train[0]["messages"]] == ["user", "assistant"])),
    ("chat log, one turn per row, no id", csv_of(_turn_log(with_id=False)), {},
     Trains("chat", {"speaker": "speaker", "content": "message"}, rows=10)),
    ("chat log rows with an intent column", csv_of(_turn_log(label=True)), {},
     Refuses("ambiguous_label", ("'intent'", "'speaker'"), ("label",))),
    # --- images: layouts ---------------------------------------------------------------------------------------
    ("train/ and test/ folders", tree(_split_tree()), {},
     Trains("image-classification", classes={"cat": 6, "dog": 6}, test=4, words=("test",))),
    ("train/ val/ test/ in a zip", zipped(_three_split_tree("flowers/")), {},
     Trains("image-classification", classes={"cat": 8, "dog": 8}, rows=16, test=6,
            check=lambda d: (len(d.validation) == 4 and len(d.train) == 12))),
    ("kaggle layout: train/<class>/ and an unlabelled test/",
     tree({**classes_tree({"cat": 5, "dog": 5}, prefix="train/"),
           **{f"test/{i}.jpg": image_bytes(300 + i, "JPEG") for i in range(4)}}), {},
     Trains("image-classification", classes={"cat": 5, "dog": 5}, warnings=("unlabelled_split",),
            check=lambda d: d.test is None)),
    ("class folders holding train/ and test/", tree(_class_first_splits()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 5}, test=4)),
    ("split folders without class folders", tree(_split_folders_without_classes()), {},
     Refuses("split_names_as_classes", ("'train'", "'test'", "splits"), ("one folder per class",))),
    ("wrapped three folders deep, a README on top", zipped(_wrapped_deep()), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4}, warnings=("loose_files",))),
    ("macOS zip with __MACOSX and .DS_Store", zipped(_mac_zip()), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4},
            check=lambda d: not {"not_image", "unreadable_image", "loose_files"} & set(d.report.codes()))),
    ("non-ASCII class names, UTF-8 without the flag", zipped(_non_ascii_classes()), {},
     Trains("image-classification", classes={"café": 4, "crème brûlée": 4, "日本茶": 4})),
    ("non-ASCII class names with the flag", zipped(_non_ascii_classes(), flag=True), {},
     Trains("image-classification", classes={"café": 4, "crème brûlée": 4, "日本茶": 4})),
    ("class names in an old code page", zipped(_legacy_names(), encoding="cp850"), {},
     Trains("image-classification", rows=8, warnings=("zip_name_encoding",))),
    ("folders cat, Cat and cats", zipped(_case_folders()), {},
     Trains("image-classification", classes={"cat": 8, "dog": 4}, warnings=("label_variants",),
            words=("'cats'", "'Cat'"))),
    ("macOS decomposed accents beside composed ones", tree(_nfd_folders()), {},
     Trains("image-classification", classes={"café": 6, "thé": 4}, check=_class_names_are_clean)),
    ("the same class folders under 2023/ and 2024/",
     tree({**classes_tree({"2023/cat": 3, "2023/dog": 3}), **classes_tree({"2024/cat": 2, "2024/Dog": 2}, start=40)}),
     {}, Trains("image-classification", classes={"cat": 5, "dog": 5}, warnings=("grouped_class_folders",))),
    ("dataset/ and 'dataset copy/' side by side",
     zipped({**classes_tree({"dataset/cat": 4, "dataset/dog": 4}),
             **classes_tree({"dataset copy/cat": 4, "dataset copy/dog": 4})}), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4}, warnings=("grouped_class_folders", "duplicates"))),
    # --- images: phone files ------------------------------------------------------------------------------------
    ("PNG bytes named .jpg", tree(_phone("png_as_jpg")()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 4}, check=_kept("phone_photo.jpg"))),
    ("motion photo: JPEG + video", tree(_phone("motion")()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 4}, check=_kept("phone_photo.jpg"))),
    ("EXIF-rotated portrait", tree(_phone("rotated")()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 4}, check=_rotation_applied)),
    ("HEIC photo", tree(_phone("heic")()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 4}, check=_kept("phone_photo.heic"))),
    ("AVIF photo", tree(_phone("avif")()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 4}, check=_kept("phone_photo.avif"))),
    ("photos without suffix, .JFIF, .JPG", tree(_no_suffix_photos()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 6})),
    ("takeout .json sidecars", tree(_sidecars()), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4}, warnings=("not_image",))),
    ("truncated webp", tree(_truncated_webp()), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4},
            check=lambda d: {"truncated_image", "unreadable_image"} & set(d.report.codes()))),
    # --- images: copies -----------------------------------------------------------------------------------------
    ("the same photo three times in a class", tree(_duplicate_images()), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4}, warnings=("duplicates",))),
    ("the same photo in train and val/test", tree(_leaky_splits()), {},
     Trains("image-classification", classes={"cat": 8, "dog": 8}, test=6, warnings=("leakage",),
            check=lambda d: len(d.validation) == 4)),
    ("the same photo in two classes", tree(_image_in_two_classes()), {},
     Trains("image-classification", warnings=("conflicting_labels",))),
    ("validation folder holding a training photo", _val_folder_with_copies, {"validation_path": "holdout"},
     Trains("image-classification", warnings=("leakage",), check=lambda d: len(d.validation) == 4)),
    ("two photos per class", tree(classes_tree({"cat": 2, "dog": 2})), {},
     Trains("image-classification", classes={"cat": 2, "dog": 2}, warnings=("tiny_validation",))),
    # --- more real exports ---------------------------------------------------------------------------------------
    ("chatbot log: utterance, intent, confidence", csv_of(_intents), {},
     Trains("text-classification", {"text": "utterance", "label": "intent"},
            {"check_balance": 8, "lost_card": 8, "transfer": 8, "opening_hours": 8})),
    ("airline tweets: sentiment beside airline", csv_of(_airline_tweets), {},
     Refuses("ambiguous_label", ("'airline_sentiment'", "'airline'"), ("label",),
             options=("airline_sentiment", "airline"))),
    ("airline tweets, sentiment chosen", csv_of(_airline_tweets), {"columns": {"label": "airline_sentiment"}},
     Trains("text-classification", {"text": "text", "label": "airline_sentiment"},
            {"negative": 10, "neutral": 10, "positive": 10})),
    ("kaggle spam.csv: v1/v2, empty columns, cp1252", _kaggle_spam, {},
     Trains("text-classification", {"text": "v2", "label": "v1"}, {"ham": 10, "spam": 10}, warnings=("encoding",))),
    ("french excel csv: sep=; and cp1252 accents", _french_semicolons, {},
     Trains("text-classification", {"text": "Message", "label": "Catégorie"},
            {"Facturation": 6, "Réclamation": 6})),
    ("api json with a results list", _api_json, {},
     Trains("text-classification", {"text": "text", "label": "label"}, {"billing": 6, "shipping": 6})),
    ("workbook with an instructions sheet", workbook(_instructions_and_data()), {},
     Refuses("several_sheets", ("'Instructions'", "'Data'"), ("sheet",), options=("Instructions", "Data"))),
    ("workbook with an instructions sheet, Data chosen", workbook(_instructions_and_data()), {"sheet": "Data"},
     Trains("text-classification", classes={"billing": 8, "shipping": 8, "technical": 8})),
    ("excel csv with trailing commas and empty rows", _trailing_commas, {},
     Trains("text-classification", {"text": "text", "label": "label"}, {"billing": 6, "shipping": 6})),
    ("gemini contents/parts with role model", jsonl("gemini.jsonl", _gemini_chats()), {},
     Trains("chat", {"messages": "contents"}, rows=12)),
    ("zendesk export: group, satisfaction, via", csv_of(_zendesk), {},
     Refuses("ambiguous_label", ("'Group'", "'Satisfaction Score'"), ("label",))),
    ("zendesk export, Group chosen", csv_of(_zendesk), {"columns": {"label": "Group"}},
     Trains("text-classification", {"text": "Description", "label": "Group"}, {t: 6 for t in TEAMS})),
    ("hugging face parquet, integer labels", _hf_parquet, {},
     Trains("text-classification", {"text": "text", "label": "label"}, {"0": 10, "1": 10})),
    ("zip made on windows: backslash paths", _windows_zip, {},
     Trains("image-classification", classes={"cat": 4, "dog": 4})),
    ("roboflow export: train/valid/test + readmes", zipped(_roboflow()), {},
     Trains("image-classification", classes={"cat": 8, "dog": 8}, test=4, warnings=("loose_files",))),
    ("Train/ and Test/ in capitals", tree({**classes_tree({"cat": 5, "dog": 5}, prefix="Train/"),
                                          **classes_tree({"cat": 2, "dog": 2}, prefix="Test/", start=60)}), {},
     Trains("image-classification", classes={"cat": 5, "dog": 5}, test=4)),
    ("training/ and validation/ (kaggle naming)",
     tree({**classes_tree({"cat": 5, "dog": 5}, prefix="training/"),
           **classes_tree({"cat": 2, "dog": 2}, prefix="validation/", start=60)}), {},
     Trains("image-classification", classes={"cat": 7, "dog": 7}, check=lambda d: len(d.validation) == 4)),
    ("a class folder holding only videos", tree(_videos_only_class()), {},
     Trains("image-classification", classes={"cat": 4, "dog": 4}, warnings=("not_image",))),
    ("16-bit tiff, animated gif and bmp", tree(_scans()), {},
     Trains("image-classification", classes={"cat": 5, "dog": 6})),
    ("one image folder and a labels.csv", zipped(_csv_labels_layout()), {},
     Refuses("labels_file_layout", ("labels.csv",), ("one folder per class",))),
    ("surveymonkey export: a second header row", csv_of(lambda: _surveymonkey(None)), {},
     Trains("text-classification", {"text": "Any other comments?", "label": "How satisfied are you with our service?"},
            {level: 8 for level in SATISFACTION}, warnings=("survey_header",))),
    ("qualtrics export: question and ImportId rows", _qualtrics, {},
     Trains("text-classification", {"text": "Q2_TEXT", "label": "Q1"}, {"Billing": 8, "Shipping": 8},
            warnings=("survey_header",))),
    ("input/target translation pairs", csv_of(_seq2seq), {},
     Refuses("label_not_classes", ("'target'", "free text"), ("chat",))),
    ("quora: qid, question_text, target 0/1", csv_of(_quora), {},
     Trains("text-classification", {"text": "question_text", "label": "target"}, {"0": 15, "1": 15})),
    ("a typo makes a third class", csv_of(_typo_labels), {},
     Trains("text-classification", classes={"billing": 10, "shipping": 8, "shiping": 2},
            warnings=("similar_labels",), words=("'shiping' (2)",))),
    ("bank export: date, description, amount, category", csv_of(_bank), {},
     Trains("text-classification", {"text": "Description", "label": "Category"},
            {"Groceries": 8, "Transport": 8, "Subscriptions": 8, "Shopping": 8})),
    ("labels as one-item JSON lists", jsonl("lists.jsonl", _single_item_lists()), {},
     Trains("text-classification", classes={"billing": 8, "shipping": 8}, warnings=("label_variants",))),
    ("animals/cat, vehicles/car: two levels", tree(_hierarchy()), {},
     Trains("image-classification", classes={"animals": 6, "vehicles": 6}, warnings=("nested_class_folders",))),
    ("text and label headers swapped", csv_of(_swapped), {},
     Refuses("swapped_columns", ("swapped",), ("as the text",))),
    ("tweets with a user column and polarity 0/1", csv_of(_tweets), {},
     Trains("text-classification", {"text": "tweet", "label": "polarity"}, {"0": 20, "1": 20})),
    ("150 numbered categories", csv_of(_catalog), {},
     Trains("text-classification", {"text": "title", "label": "Category"},
            check=lambda d: "similar_labels" not in d.report.codes() and len(d.labels) == 150)),
    ("tsv with a stray opening quote", _unbalanced("\t", "q.tsv"), {},
     Refuses("unbalanced_quote", ("never closes", "swallowed"), ("quote",))),
    ("csv with a stray opening quote", _unbalanced(",", "q.csv"), {},
     Refuses("unbalanced_quote", ("never closes",), ("quote",))),
    ("reviews with line breaks and commas inside quotes", _multiline_reviews, {},
     Trains("text-classification", {"text": "review", "label": "sentiment"}, {"negative": 10, "positive": 10})),
    ("a Total row under the table", workbook({"Tickets": _with_totals()}), {},
     Trains("text-classification", {"text": "Ticket", "label": "Team"}, {"Billing": 8, "Shipping": 8},
            warnings=("totals_row",))),
    ("NA as a label", csv_of(_na_labels), {},
     Trains("text-classification", classes={"billing": 7, "shipping": 7}, warnings=("missing_values",))),
    ("NA as a region code among codes", csv_of(_region_codes), {},
     Trains("text-classification", classes={"EU": 6, "NA": 6, "APAC": 6})),
    ("hugging face parquet with class names", _hf_named_parquet, {},
     Trains("text-classification", classes={"negative": 10, "positive": 10}, words=("names",))),
    ("customer_message beside agent_reply and customer_name", csv_of(_support_log), {},
     Trains("text-classification", {"text": "customer_message", "label": "category"})),
    ("polarity written +, - and 0", csv_of(_polarity_symbols), {},
     Trains("text-classification", {"label": "sentiment"}, {"+": 10, "-": 10, "0": 10})),
    ("'none' as a frequent intent", csv_of(_none_intent), {},
     Trains("text-classification", classes={"none": 16, "refund": 8, "shipping": 8},
            warnings=("marker_kept_as_class",))),
    # --- sanity: misreadings named before training ------------------------------------------------------------
    ("a split column chosen as the label", csv_of(_split_column), {"columns": {"label": "split"}},
     Refuses("split_names_as_classes", ("'train'", "'test'"), ("choose the column",))),
    ("text column equal to the label", csv_of(_text_is_label), {"columns": {"text": "text", "label": "label"}},
     Refuses("label_is_text", ("same data",), ("different columns",))),
    ("the same text in every row", csv_of(_constant_text), {"columns": {"text": "text", "label": "label"}},
     Refuses("constant_text", ("'see attachment'",), ("Choose",))),
    ("identifiers chosen as the text", csv_of(CRM), {"columns": {"text": "ticket_id", "label": "Assigned team"}},
     Trains("text-classification", {"text": "ticket_id"}, warnings=("text_not_text",))),
    # --- errors come with the warnings that explain them ------------------------------------------------------
    ("duplicates leave a class too small", _duplicates_rare, {},
     Refuses("rare_class", ("'legal' (1)",), ("Add examples",), ("duplicates",))),
    ("a title row above a too-small class", _title_then_rare, {},
     Refuses("rare_class", ("'legal'",), ("Add examples",), ("title_rows",))),
    ("'sep=;' file with a too-small class", _sep_line_bad_class, {},
     Refuses("rare_class", ("'legal'",), ("Add examples",))),
]


def _build(case_build, kwargs, tmp_path):
    path = case_build(tmp_path)
    kwargs = dict(kwargs)
    if "validation_path" in kwargs:
        kwargs["validation_path"] = tmp_path / kwargs["validation_path"]
    return path, kwargs


@pytest.mark.parametrize("build, kwargs, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_awkward_input_trains_on_the_right_thing_or_says_why(tmp_path, home, monkeypatch, build, kwargs, expected):
    monkeypatch.setenv("HOME", str(tmp_path))  # "~/..." paths point into this test's folder
    path, kwargs = _build(build, kwargs, tmp_path)
    data = load_data(path, home=home, **kwargs)
    lines = "\n".join(understood_lines(data))
    if isinstance(expected, Refuses):
        _assert_refused(data, expected, lines)
    else:
        _assert_trains(data, expected, lines)


def _assert_trains(data, expected: Trains, lines: str) -> None:
    assert data.ok, lines
    assert data.task == expected.task, lines
    for role, column in expected.columns.items():
        assert data.columns.get(role) == column, (role, lines)
    if data.task != "chat":
        names = [data.labels[i] for i in list(data.train["label"]) + list(data.validation["label"])]
        if expected.classes is not None:
            assert dict(Counter(names)) == expected.classes, lines
    if expected.rows is not None:
        assert len(data.train) + len(data.validation) == expected.rows, lines
    if expected.test is not None:
        assert data.test is not None and len(data.test) == expected.test, lines
    for code in expected.warnings:
        assert code in [w.code for w in data.report.warnings], (code, lines)
    for word in expected.words:
        assert word in lines, (word, lines)
    if expected.check is not None:
        assert expected.check(data) is not False, lines


def _assert_refused(data, expected: Refuses, lines: str) -> None:
    assert not data.ok and data.train is None and data.validation is None, lines
    found = [p for p in data.report.errors if p.code == expected.code]
    assert found, (expected.code, lines)
    problem = found[0]
    for word in expected.words:
        assert word in problem.message, (word, problem.message)
    assert problem.fix
    for word in expected.fix:
        assert word in problem.fix, (word, problem.fix)
    for code in expected.warnings:
        assert code in [w.code for w in data.report.warnings], (code, lines)
    if expected.options is not None:
        assert tuple(problem.options) == expected.options
        role = {"label_guess": "label", "several_sheets": "sheet", "unknown_sheet": "sheet"}.get(
            expected.code, expected.code.removeprefix("ambiguous_"))
        assert tuple(data.candidates[role]) == expected.options
    with pytest.raises(DataError) as info:
        data.require_ok()
    for warning in data.report.warnings:  # the warnings that may explain the error are never hidden
        assert warning.message in str(info.value)


def test_the_corpus_is_large_and_varied():
    from tests.test_hardening_inputs import CORPUS
    assert len(CASES) + len(CORPUS) >= 150
    assert len({c[0] for c in CASES}) == len(CASES)
    refusals = {c[3].code for c in CASES if isinstance(c[3], Refuses)}
    assert len(refusals) >= 12 and sum(isinstance(c[3], Trains) for c in CASES) >= 50


def test_data_error_lists_the_warnings_that_explain_it(tmp_path):
    path = _title_then_rare(tmp_path)
    data = load_data(path)
    with pytest.raises(DataError) as info:
        data.require_ok()
    text = str(info.value)
    assert "'legal'" in text and "title" in text and text.index("Error") < text.index("Warning")
    assert "Tickets by department" in text


def test_understood_lines_say_task_columns_classes_merges_and_drops(tmp_path):
    frame = _variants()
    frame.loc[len(frame)] = ["#N/A", "billing"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    lines = "\n".join(load_data(tmp_path / "d.csv").understood())
    for words in ("Task: text classification", "label = 'label'", "text = 'text'", "'billing': ", "merged",
                  "'BILLING' (1)", "Left out: 1 empty cells", "Ready to train."):
        assert words in lines, (words, lines)

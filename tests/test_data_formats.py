"""Round trips: every supported format and encoding comes out as the same normalised rows."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from core.data import load_data
from core.data.readers import sniff_separator
from tests.conftest_data import image_folder, png, write, zip_folder

ROWS = [(f"message number {i} about topic {'xyz'[i % 3]}", "xyz"[i % 3]) for i in range(12)]


def _frame():
    return pd.DataFrame(ROWS, columns=["text", "label"])


def _check(data):
    assert data.report.ok, data.report
    assert data.task == "text-classification" and data.labels == ["x", "y", "z"]
    texts = sorted(list(data.train["text"]) + list(data.validation["text"]))
    assert texts == sorted(t for t, _ in ROWS)
    label_of = dict(ROWS)
    for text, label in zip(data.train["text"], data.train["label"]):
        assert data.labels[label] == label_of[text]


@pytest.mark.parametrize("name, sep, encoding", [
    ("d.csv", ",", "utf-8"), ("d.tsv", "\t", "utf-8"), ("semi.csv", ";", "utf-8"), ("tab.csv", "\t", "utf-8"),
    ("bom.csv", ",", "utf-8-sig"), ("u16.csv", ",", "utf-16"), ("u16le.csv", "\t", "utf-16-le"),
    ("pipe.txt", "|", "utf-8"),
])
def test_delimited_round_trip(tmp_path, name, sep, encoding):
    path = tmp_path / name
    _frame().to_csv(path, sep=sep, index=False, encoding=encoding)
    data = load_data(path)
    _check(data)
    assert "encoding" not in data.report.codes()


def test_latin1_is_read_and_reported(tmp_path):
    path = write(tmp_path / "l.csv", "text,label\n" + "\n".join(f"café {t},{lab}" for t, lab in ROWS) + "\n",
                 encoding="latin-1")
    data = load_data(path)
    assert "encoding" in data.report.codes() and data.report.ok
    assert all(t.startswith("café") for t in data.train["text"])


def test_windows_line_endings_and_messy_headers(tmp_path):
    body = "\r\n".join(f'"{t}",{lab}' for t, lab in ROWS)
    path = write(tmp_path / "w.csv", '\ufeff Text ,"LABEL "\r\n' + body + "\r\n")
    data = load_data(path, columns={"text": "text", "label": "label"})
    _check(data)
    assert data.columns == {"text": "Text", "label": "LABEL"}


def test_excel(tmp_path):
    _frame().to_excel(tmp_path / "d.xlsx", index=False)
    _check(load_data(tmp_path / "d.xlsx"))


def test_json_list_and_wrapped(tmp_path):
    records = [{"text": t, "label": lab} for t, lab in ROWS]
    (tmp_path / "a.json").write_text(json.dumps(records))
    (tmp_path / "b.json").write_text(json.dumps({"data": records}))
    _check(load_data(tmp_path / "a.json"))
    _check(load_data(tmp_path / "b.json"))


def test_jsonl_and_jsonl_saved_as_json(tmp_path):
    lines = "\n".join(json.dumps({"text": t, "label": lab}) for t, lab in ROWS)
    (tmp_path / "a.jsonl").write_text(lines + "\n\n")
    (tmp_path / "b.json").write_text(lines)
    _check(load_data(tmp_path / "a.jsonl"))
    _check(load_data(tmp_path / "b.json"))


def test_numeric_labels_keep_their_text(tmp_path):
    (tmp_path / "n.jsonl").write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 3 + 1}) for i in range(9)))
    data = load_data(tmp_path / "n.jsonl")
    assert data.labels == ["1", "2", "3"]


def test_parquet(tmp_path):
    _frame().to_parquet(tmp_path / "d.parquet")
    _check(load_data(tmp_path / "d.parquet"))


def test_parquet_chat_messages(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(6)]
    pd.DataFrame(rows).to_parquet(tmp_path / "c.parquet")
    data = load_data(tmp_path / "c.parquet")
    assert data.report.ok and data.task == "chat"
    assert data.train[0]["messages"][0]["role"] == "user"


def test_image_folder(tmp_path):
    root = image_folder(tmp_path / "pets", classes=("cat", "dog", "10", "2"), per_class=3)
    data = load_data(root)
    assert data.report.ok, data.report
    assert data.task == "image-classification" and data.labels == ["2", "10", "cat", "dog"]
    assert len(data.train) + len(data.validation) == 12
    assert set(data.validation["label"]) == {0, 1, 2, 3}  # stratified: every class validated
    first = data.train[0]
    assert first["image"].startswith("/") and first["image"].endswith(".png")
    assert data.labels[first["label"]] in first["image"]


def test_zip_of_wrapped_folder_is_unpacked_once_into_the_home(tmp_path, home):
    root = image_folder(tmp_path / "src", per_class=3)
    (tmp_path / "up").mkdir()
    archive = zip_folder(root, tmp_path / "up" / "pets.zip", prefix="pets/")
    data = load_data(archive, home=home)
    assert data.report.ok, data.report
    assert data.labels == ["cat", "dog"]
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["pets.zip"]  # nothing beside the zip
    (unpacked,) = [p for p in (home.root / "cache" / "unpacked").iterdir() if p.is_dir()]
    assert all(p.startswith(str(unpacked)) for p in data.train["image"])
    stamp = (unpacked / "pets" / "cat" / "0.png").stat().st_mtime_ns
    again = load_data(archive, home=home)
    assert (unpacked / "pets" / "cat" / "0.png").stat().st_mtime_ns == stamp  # reused, not unpacked again
    assert sorted(again.train["image"]) == sorted(data.train["image"])


def test_separate_validation_file(tmp_path):
    write(tmp_path / "train.csv", "text,label\n" + "\n".join(f"{t},{lab}" for t, lab in ROWS) + "\n")
    write(tmp_path / "val.csv", "Text,Label\nfresh words,x\nnew words,y\n")
    data = load_data(tmp_path / "train.csv", validation_path=tmp_path / "val.csv")
    assert data.report.ok, data.report
    assert len(data.train) == 12 and list(data.validation["text"]) == ["fresh words", "new words"]
    assert data.summary["validation"]["source"] == "file"


def test_separate_validation_image_folder(tmp_path):
    train = image_folder(tmp_path / "train", per_class=3)
    val = tmp_path / "val"
    png(val / "cat" / "v.png", color=200)
    png(val / "dog" / "v.png", color=210)
    data = load_data(train, validation_path=val)
    assert data.report.ok and len(data.validation) == 2 and len(data.train) == 6


def test_row_numbers_per_format(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a", "label": "x"}\n\n{"text": "", "label": "y"}\n'
                                      + "\n".join(json.dumps({"text": f"t{i}", "label": "xy"[i % 2]})
                                                  for i in range(6)))
    (problem,) = [p for p in load_data(tmp_path / "a.jsonl").report.warnings if p.code == "empty_cells"]
    assert problem.rows == (3,) and "line 3" in problem.message


def test_sniffer_prefers_consistent_separator():
    assert sniff_separator('text,label\n"a; b; c",x\n"d; e",y\n') == ","
    assert sniff_separator("a;b\n1,5;2\n3,5;4\n") == ";"

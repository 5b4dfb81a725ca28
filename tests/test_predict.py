"""Batch prediction: every row (or image) gets the model's columns next to its own, the accuracy on a labelled file
is exactly what `studio eval --data` reports, big files stream through in chunks, Stop keeps what was done, and
nothing is written beside the input."""
from __future__ import annotations

import csv
import json
import shutil
import threading

import pandas as pd
import pytest

from core.cli import eval_summary, main
from core.engine.runner import evaluate_run
from core.inference.classify import Classifier
from core.predict import PredictError, default_output, predict_file
from core.predict import source as source_module
from tests import support_runs


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_labelled_file_keeps_its_columns_and_scores_exactly_like_studio_eval(tmp_path_factory, tmp_path):
    run = support_runs.head_only_text_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = support_runs.write_topics(inbox / "tickets.csv", 2000, 7, extra=True)
    result = predict_file(run.path, data, tmp_path / "out" / "predicted.csv", home)
    table = _read(result.out)
    assert list(table.columns) == ["id", "text", "topic", "note", "predicted_label", "confidence", "top_3", "problem"]
    original = _read(data)
    assert table[list(original.columns)].equals(original)  # every input cell as it was, in order
    assert result.rows == result.predicted == result.total == 2000 and not result.stopped
    report = evaluate_run(run.path, home, data_path=str(data))
    assert result.accuracy["accuracy"] == report["tuned"]["accuracy"]
    assert result.accuracy["macro_f1"] == report["tuned"]["macro_f1"]
    assert result.accuracy["examples"] == report["examples"]
    classifier = Classifier.from_run(run.path, home)
    for i in (0, 999, 1999):
        best = classifier.predict(original["text"][i])
        assert table["predicted_label"][i] == best[0][0]
        assert float(table["confidence"][i]) == pytest.approx(best[0][1], abs=1e-4)
        assert table["top_3"][i].startswith(f"{best[0][0]} (")
        assert len(table["top_3"][i].split("; ")) == 3
    assert _listing(inbox) == ["tickets.csv"]  # nothing written beside the input


def test_a_fine_tuned_classifier_agrees_with_eval_when_eval_leaves_rows_out(tmp_path_factory, tmp_path):
    run = support_runs.full_text_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    data = support_runs.write_topics(tmp_path / "test.csv", 150, 11)
    rows = _read(data)
    extra = pd.concat([rows.head(5), _read(support_runs.write_topics(tmp_path / "seen.csv", 3, 1))])  # copies + seen
    extra.to_csv(data, mode="a", header=False, index=False)
    result = predict_file(run.path, data, tmp_path / "p.jsonl", home)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == result.rows == 158 and set(lines[0]) >= {"text", "topic", "predicted_label", "top_3"}
    report = evaluate_run(run.path, home, data_path=str(data))
    assert report["examples"] < 158  # eval leaves out the copies and the rows seen in training...
    assert result.accuracy["examples"] == report["examples"]  # ...and so does the accuracy here
    assert result.accuracy["accuracy"] == report["tuned"]["accuracy"]
    assert result.accuracy["macro_f1"] == report["tuned"]["macro_f1"]
    said = result.summary()  # why fewer rows were scored than predicted, in the data checks' words
    assert f"on the {report['examples']:,} labelled rows" in said and "Not scored: test.csv:" in said
    # studio eval gives the same reasons in its report, and says them after its verdict
    assert report["left_out"] == result.accuracy["why"] and len(report["left_out"]) == 2
    assert any("repeat an earlier row" in r for r in report["left_out"])
    assert any("also appear in the training data" in r for r in report["left_out"])
    checked = report["against_validation"]  # the file's figure beside the run's validation figure
    assert checked["file"] == report["tuned"]["accuracy"] and checked["message"] in result.summary()
    said = eval_summary(report)
    assert checked["message"] in said
    assert said[-3:] == [f"Scored {report['examples']} rows; left out:", *(f"  {r}" for r in report["left_out"])]


def test_images_in_a_zip_are_predicted_with_their_class_folders_as_truth(tmp_path_factory, tmp_path):
    run = support_runs.head_only_image_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    folder = support_runs.colour_images(tmp_path / "pictures", 30, 5)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    archive = support_runs.zipped(folder, inbox / "pictures.zip")
    (folder / "red" / "broken.png").write_bytes(b"not a picture")
    broken = support_runs.zipped(folder, tmp_path / "with-broken.zip")
    result = predict_file(run.path, archive, tmp_path / "images.csv", home)
    table = _read(result.out)
    assert list(table.columns) == ["file", "label", "predicted_label", "confidence", "top_3", "problem"]
    assert len(table) == 30 and set(table["label"]) == {"red", "green", "blue"}
    report = evaluate_run(run.path, home, data_path=str(archive))
    assert result.accuracy["accuracy"] == report["tuned"]["accuracy"] and result.accuracy["examples"] == 30
    assert _listing(inbox) == ["pictures.zip"]  # unpacked into the studio home, not beside the zip
    with_broken = predict_file(run.path, broken, tmp_path / "broken.csv", home)
    table = _read(with_broken.out)
    bad = table[table["file"] == "red/broken.png"]
    assert with_broken.rows == 31 and with_broken.predicted == 30
    assert bad["predicted_label"].tolist() == [""] and "could not be read" in bad["problem"].tolist()[0]


def test_a_large_file_streams_through_in_chunks_and_stop_keeps_the_rows_done(tmp_path_factory, tmp_path,
                                                                              monkeypatch):
    run = support_runs.head_only_text_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    data = tmp_path / "big.csv"
    texts = support_runs.text_rows(4000, 3)["text"]
    pd.DataFrame({"body": texts, "n": range(4000)}).to_csv(data, index=False)
    monkeypatch.setattr(source_module, "CHUNK_ROWS", 500)
    chunks = []
    real = pd.read_csv

    def counting(*args, **kwargs):
        reader = real(*args, **kwargs)
        if kwargs.get("chunksize") == 500:
            return (chunks.append(len(c)) or c for c in reader)
        return reader
    monkeypatch.setattr(pd, "read_csv", counting)
    written, fractions, messages = [], [], []
    partial = tmp_path / ".streamed.csv.partial"

    def progress(message, fraction):
        fractions.append(fraction)
        messages.append(message)
        if partial.exists():
            written.append(sum(1 for _ in open(partial, encoding="utf-8-sig")) - 1)
    result = predict_file(run.path, data, tmp_path / "streamed.csv", home, columns={"text": "body"},
                          progress=progress)
    assert chunks == [500] * 8  # never more than a chunk of rows read at once
    assert result.rows == 4000 and result.accuracy is None  # no label column: nothing to score
    assert written and written[0] < 4000 and written == sorted(written)  # the output grew as it went
    assert fractions[-1] == 1.0 and any("left" in m for m in messages)
    stop = threading.Event()

    def stop_soon(message, fraction):
        if fraction and fraction > 0.2:
            stop.set()
    stopped = predict_file(run.path, data, tmp_path / "stopped.csv", home, columns={"text": "body"},
                           progress=stop_soon, stop=stop)
    kept = _read(stopped.out)
    assert stopped.stopped and 0 < len(kept) < 4000 and len(kept) % 500 == 0  # whole chunks only
    assert kept["predicted_label"].str.len().gt(0).all()  # every kept row is complete
    assert kept["n"].tolist() == [str(i) for i in range(len(kept))]


def test_chat_runs_answer_every_prompt_like_the_playground(tmp_path_factory, tmp_path):
    from core.inference.chat import ChatModel

    run = support_runs.chat_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    data = tmp_path / "questions.csv"
    pd.DataFrame({"question": ["What colour is the sky?", "", "What colour is the plum?"],
                  "ticket": ["a", "b", "c"]}).to_csv(data, index=False)
    messages = []
    result = predict_file(run.path, data, tmp_path / "answers.csv", home, columns={"prompt": "question"},
                          max_new_tokens=12, progress=lambda m, f: messages.append(m))
    table = _read(result.out)
    assert list(table.columns) == ["question", "ticket", "answer", "problem"]
    model = ChatModel.from_run(run.path, home)
    expected = model.generate([{"role": "user", "content": "What colour is the plum?"}], temperature=0,
                              max_new_tokens=12).strip()
    assert table["answer"][2] == expected and table["problem"][1] == "empty prompt"
    assert result.predicted == 2 and any("left" in m for m in messages)
    conversations = tmp_path / "conversations.jsonl"
    conversations.write_text(json.dumps({"messages": [{"role": "user", "content": "What colour is the plum?"},
                                                      {"role": "assistant", "content": "Purple."}]}) + "\n")
    again = predict_file(run.path, conversations, tmp_path / "again.jsonl", home, max_new_tokens=12)
    line = json.loads((tmp_path / "again.jsonl").read_text(encoding="utf-8"))
    assert line["answer"] == expected and again.rows == 1  # the reference answer is not given to the model


def test_bad_inputs_say_what_to_change(tmp_path_factory, tmp_path):
    run = support_runs.head_only_text_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    data = tmp_path / "other.csv"
    data.write_text("subject,body\nhello,world\n", encoding="utf-8")
    with pytest.raises(PredictError, match=r"no column 'text' \(the text\).*subject, body.*--column text=COLUMN"):
        predict_file(run.path, data, tmp_path / "o.csv", home)
    with pytest.raises(PredictError, match="overwrite or sit inside the input"):
        predict_file(run.path, data, data, home, columns={"text": "body"})
    (tmp_path / "taken.csv").write_text("keep me")
    with pytest.raises(PredictError, match="already exists.*--overwrite"):
        predict_file(run.path, data, tmp_path / "taken.csv", home, columns={"text": "body"})
    assert (tmp_path / "taken.csv").read_text() == "keep me"
    with pytest.raises(PredictError, match=r"\.csv or \.jsonl"):
        predict_file(run.path, data, tmp_path / "o.xlsx", home, columns={"text": "body"})
    with pytest.raises(PredictError, match="not an image folder"):
        predict_file(support_runs.head_only_image_run(tmp_path_factory).path, data, tmp_path / "o.csv", home)


def test_the_cli_writes_into_the_home_by_default_and_reports_accuracy(tmp_path_factory, tmp_path, capsys):
    run = support_runs.head_only_text_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    data = support_runs.write_topics(tmp_path / "few.csv", 40, 9)
    assert main(["predict", str(run.path), "--data", str(data), "--home", str(home.root)]) == 0
    out = capsys.readouterr()
    written = out.out.strip().splitlines()[-1]
    assert written.startswith(str(home.root / "predictions")) and _read(written).shape[0] == 40
    assert json.loads(out.err.strip().splitlines()[-1])["examples"] == 40
    assert main(["predict", str(run.path), "--data", str(data), "--out", str(tmp_path / "x.csv"), "--column", "text",
                 "--home", str(home.root)]) == 2
    assert main(["predict", str(run.path), "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "y.csv"),
                 "--home", str(home.root)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert default_output(home, run.path, data).parent == home.root / "predictions"
    shutil.rmtree(home.root / "predictions")


def test_a_config_naming_one_role_keeps_the_detected_others(tmp_path):
    """A config that names only the group (or only the label) trained on the text column detection found: a file
    with that column is predicted, not refused for lacking a column called 'text'."""
    from types import SimpleNamespace

    from core.config import DataConfig
    from core.predict.batch import _trained_columns
    from core.runs import RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.data_summary.write_text(json.dumps({"columns": {"text": "description", "label": "section"}}))
    config = SimpleNamespace(data=DataConfig(path="x.csv", columns={"group": "source"}))
    assert _trained_columns(run, config) == {"text": "description", "label": "section", "group": "source"}
    config = SimpleNamespace(data=DataConfig(path="x.csv", columns={"label": "kind"}))  # the user's own choice wins
    assert _trained_columns(run, config)["label"] == "kind"

"""After its report, the automatic search's head learns from the validation rows too (``train.refit_all``), and
the run says so everywhere a user reads it; the validation split is then no longer a fair test of it."""
import csv
import json

import pytest

from core.config import DataConfig, JobConfig, TrainConfig
from core.engine.runner import JobFailed, evaluate_run, run_job
from core.inference.classify import Classifier
from core.saved import load_head
from tests.test_classify_support import WORDS, text_rows


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(zip(rows["text"], (list(WORDS)[i] for i in rows["label"])))
    return path


def _job(bert_dir, train, validation=None, **train_settings) -> JobConfig:
    return JobConfig(task="text-classification", model=str(bert_dir), strategy="auto",
                     data=DataConfig(path=str(train), validation_path=str(validation) if validation else None),
                     train=TrainConfig(preset="quick", threads=1, max_minutes=0.5, **train_settings))


def _weights(run) -> dict:
    head, _ = load_head(run.model)
    return {k: v.clone() for k, v in head.state_dict().items()}


def test_the_chosen_head_is_fitted_again_on_every_row_after_the_report(home, bert_dir, tmp_path):
    train = _write(tmp_path / "train.csv", text_rows(60, 1))
    test = _write(tmp_path / "test.csv", text_rows(30, 2))
    run = run_job(_job(bert_dir, train), home, [])
    assert run.read_status()["status"] == "completed", run.read_status()
    summary = json.loads(run.data_summary.read_text())["rows"]
    every = summary["train"] + summary["validation"]
    board = json.loads((run.path / "leaderboard.json").read_text())
    report = run.read_eval()
    assert board["final_rows"] == every and report["search"]["final_rows"] == every
    assert f"all {every} rows" in report["final_fit"] and report["tuned"]["accuracy"] is not None
    assert json.loads((run.model / "classifier.json").read_text())["fitted_on_rows"] == every
    assert f"all {every} rows" in run.card.read_text()
    assert f"fitted again on all {every} rows" in (run.path / "train.log").read_text()
    # the validation rows are in the model now: scoring it on them again would flatter it, and says so
    with pytest.raises(JobFailed, match="--data FILE"):
        evaluate_run(run.path, home)
    scored = evaluate_run(run.path, home, data_path=str(test))
    assert scored["examples"] == 30 and scored["tuned"]["accuracy"] > scored["majority"]["accuracy"]
    assert " on test.csv" in scored["verdict"]["message"] and "validation split" not in scored["verdict"]["message"]
    assert Classifier.from_run(run.path, home).predict("rain and storm and wind today")[0][0] == "weather"

    kept = run_job(_job(bert_dir, train, refit_all=False), home, [])
    assert kept.read_status()["status"] == "completed"
    assert json.loads((kept.path / "leaderboard.json").read_text())["final_rows"] is None
    assert "final_fit" not in kept.read_eval() and "fitted_on_rows" not in json.loads(
        (kept.model / "classifier.json").read_text())
    assert evaluate_run(kept.path, home)["tuned"]["accuracy"] == pytest.approx(kept.read_eval()["tuned"]["accuracy"])
    # the same search, the same winner: only the rows it was fitted on differ
    assert board["winner"] == json.loads((kept.path / "leaderboard.json").read_text())["winner"]
    refit, plain = _weights(run), _weights(kept)
    assert refit.keys() == plain.keys() and any(not refit[k].equal(plain[k]) for k in refit)


def test_a_validation_file_of_the_users_own_stays_out_of_the_model(home, bert_dir, tmp_path):
    train = _write(tmp_path / "train.csv", text_rows(48, 1))
    validation = _write(tmp_path / "validation.csv", text_rows(24, 3))
    run = run_job(_job(bert_dir, train, validation), home, [])
    assert run.read_status()["status"] == "completed", run.read_status()
    assert json.loads((run.path / "leaderboard.json").read_text())["final_rows"] is None
    assert "final_fit" not in run.read_eval()
    assert " on validation.csv" in run.read_eval()["verdict"]["message"]
    assert run.read_status()["message"].endswith(" on validation.csv.")
    assert evaluate_run(run.path, home)["examples"] == 24


def test_the_evaluate_tab_says_which_rows_the_saved_model_learnt_from():
    from studio.tab_evaluate import _leaderboard_view

    candidate = {"name": "Logistic regression on TF-IDF", "status": "scored", "cv_accuracy": 0.8, "seconds": 0.2}
    board = {"candidates": [candidate], "winner": candidate["name"], "why": "It scored best.", "rows": 384,
             "budget_s": 110, "used_s": 50, "retrained_on_all_rows": True, "final_rows": None}
    _, kept = _leaderboard_view({"search": board})
    _, refit = _leaderboard_view({"search": {**board, "final_rows": 480}})
    _, partial = _leaderboard_view({"search": {**board, "retrained_on_all_rows": False}})
    assert "learnt from the 384 training rows" in kept and "fitted again" not in kept
    assert "fitted again on all 480 rows" in refit
    assert "training rows" not in partial  # a fine-tune trained on four fifths: its own sentence in "why" says so


def test_the_report_caption_says_the_rows_scored_the_model_before_it_learnt_them():
    from core.tasks import get_task
    from studio.tab_evaluate import _caption

    config = JobConfig(task="text-classification", model="minilm-l6", data=DataConfig(path="a.csv"))
    task = get_task("text-classification")
    assert _caption({"examples": 96}, task, config) == "On 96 validation rows."
    refit = _caption({"examples": 96, "final_fit": "fitted again"}, task, config)
    assert refit.startswith("On 96 validation rows.") and "Scored before the saved model was fitted again" in refit


def test_a_refit_that_fails_keeps_the_evaluated_model_and_its_report(home, bert_dir, tmp_path, monkeypatch):
    from core.engine.classify.auto import AutoRecipe

    def fails(self):
        raise RuntimeError("not enough memory for the kernel")

    monkeypatch.setattr(AutoRecipe, "refit_all_rows", fails)
    train = _write(tmp_path / "train.csv", text_rows(48, 1))
    run = run_job(_job(bert_dir, train), home, [])
    assert run.read_status()["status"] == "completed", run.read_status()
    assert run.read_eval()["tuned"]["accuracy"] is not None and "final_fit" not in run.read_eval()
    assert "failed (not enough memory for the kernel)" in (run.path / "train.log").read_text()
    assert Classifier.from_run(run.path, home).predict("rain and storm and wind today")[0][0] == "weather"

"""Resume is exact: a run stopped in its second epoch and resumed logs the same losses, step for step, as the
same run never interrupted (within 1e-5 on the CPU), for chat LoRA (length-grouped batches) and a classifier
fine-tune; also when the newest checkpoint is damaged and the one before it is used. And checkpoints are whole
or absent: a save cut short leaves no ``checkpoint-N`` folder.

Torchtune and Composer test resumption the same way. Everything runs through ``run_job`` on tiny models.
"""
from __future__ import annotations

import json
import threading

import pytest

from core.config import JobConfig
from core.engine.events import read_events
from core.engine.runner import JobFailed, run_job
from core.runs import check_checkpoint
from tests.test_chat_support import conversations, tiny_model_folder
from tests.test_hardening_support import StopAt, job, text_csv, tiny_bert

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("resume-chat"))


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume-chat-data") / "chat.jsonl"
    path.write_text("\n".join(json.dumps({"messages": m}) for m in conversations(40)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("resume-bert") / "bert")


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return text_csv(tmp_path_factory.mktemp("resume-texts") / "texts.csv", rows=40)


def _chat_job(model, data, name):
    config = JobConfig(task="chat", model=str(model), strategy="lora", name=name)
    config.data.path = str(data)
    t = config.train
    t.epochs, t.learning_rate, t.threads, t.batch_size, t.save_every, t.eval_every = 3, 3e-3, 1, 4, 4, 5
    return config


def _points(run, kind="train", key="loss"):
    return {e["step"]: e[key] for e in read_events(run.metrics) if e["type"] == kind and key in e}


def _stopped_then_resumed(home, config, stop_after: int, damage=None):
    stop = threading.Event()
    run = run_job(config, home, sinks=[StopAt(stop, lambda e: e["type"] == "train" and e.get("step", 0) >= stop_after)],
                  stop=stop)
    assert run.read_status()["status"] == "stopped"
    if damage is not None:
        damage(run)
    run_job(None, home, run=run, resume=True)
    assert run.read_status()["status"] == "completed", run.read_status()
    return run


def _assert_same(uninterrupted, resumed, kind="train", key="loss"):
    expected, got = _points(uninterrupted, kind, key), _points(resumed, kind, key)
    assert expected and set(got) == set(expected), (sorted(expected), sorted(got))
    worst = max(abs(expected[s] - got[s]) for s in expected)
    assert worst <= TOLERANCE, {s: (expected[s], got[s]) for s in expected if abs(expected[s] - got[s]) > TOLERANCE}


def test_chat_lora_resumed_in_its_second_epoch_matches_the_uninterrupted_run(home, chat_model, chat_data):
    whole = run_job(_chat_job(chat_model, chat_data, "whole"), home)
    steps = max(_points(whole))
    resumed = _stopped_then_resumed(home, _chat_job(chat_model, chat_data, "cut"), stop_after=steps // 3 + 2)
    _assert_same(whole, resumed)
    _assert_same(whole, resumed, "eval", "eval_loss")
    lines = [e["message"] for e in read_events(resumed.metrics) if e["type"] == "log"]
    (line,) = [line for line in lines if line.startswith("Resuming from checkpoint-")]
    assert steps // 3 < int(line.rstrip(".").split("-")[1]) < steps  # it went on in the second epoch


def test_classifier_fine_tune_resumes_exactly_even_past_a_damaged_checkpoint(home, bert, texts):
    def settings(name):
        return job(bert, texts, name, epochs=3.0, batch_size=8, save_every=4, eval_every=5)

    whole = run_job(settings("whole"), home)

    def damage_the_newest(run):
        newest = run.checkpoint_folders()[0]
        optimizer = newest / "optimizer.pt"
        optimizer.write_bytes(optimizer.read_bytes()[: optimizer.stat().st_size // 2])  # a save cut short
        assert check_checkpoint(newest) == "optimizer.pt is cut short"
        damage_the_newest.skipped = newest.name

    resumed = _stopped_then_resumed(home, settings("cut"), stop_after=5, damage=damage_the_newest)
    _assert_same(whole, resumed)
    _assert_same(whole, resumed, "eval", "accuracy")
    lines = " ".join(e["message"] for e in read_events(resumed.metrics) if e["type"] == "log")
    assert f"{damage_the_newest.skipped} is damaged (optimizer.pt is cut short)" in lines
    assert "Resuming from checkpoint-4." in lines  # the one before it


def test_a_checkpoint_save_cut_short_leaves_no_checkpoint_folder(home, bert, texts, monkeypatch):
    from transformers import Trainer

    real = Trainer._save_optimizer_and_scheduler
    calls = {"n": 0}

    def save_then_die(self, output_dir):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed while saving")  # the process dies halfway through the second save
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", save_then_die)
    with pytest.raises(JobFailed):
        run_job(job(bert, texts, "cut-save", epochs=3.0, batch_size=8, save_every=4, eval_every=50), home)
    (run_dir,) = list(home.runs.iterdir())
    from core.runs import RunDir

    run = RunDir(run_dir)
    assert [p.name for p in run.checkpoint_folders()] == ["checkpoint-4"]  # no half checkpoint-8
    assert run.last_checkpoint().name == "checkpoint-4" and check_checkpoint(run.last_checkpoint()) is None
    assert (run.checkpoints / ".staging" / "checkpoint-8" / "model.safetensors").is_file()  # the half one, aside

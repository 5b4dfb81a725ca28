"""Experiment tracking: every kind of run leaves TensorBoard event files holding its loss (read back with
TensorBoard's own reader), its settings in the HParams tab, and train.report_to reaches the Trainer only for
trackers that are installed."""
from __future__ import annotations

import importlib.util
import logging
import sys

import pytest

from core.config import ConfigError, JobConfig
from core.engine.events import read_events
from core.engine.runner import run_job
from core.engine.tracking import TensorBoardSink, read_scalars, trainer_report_to
from core.runs import RunDir
from tests import support_runs


@pytest.mark.parametrize("build", [support_runs.chat_run, support_runs.head_only_text_run,
                                   support_runs.full_text_run, support_runs.head_only_image_run],
                         ids=["chat-lora", "text-head-only", "text-full", "image-head-only"])
def test_every_kind_of_run_writes_its_loss_to_tensorboard(tmp_path_factory, build):
    run = build(tmp_path_factory)
    assert list((run.path / "tensorboard").glob("events.out.tfevents.*"))
    curves = read_scalars(run.path / "tensorboard")
    events = read_events(run.metrics)
    losses = [(e["step"], e["loss"]) for e in events if e["type"] == "train" and e.get("loss") is not None]
    assert len(losses) >= 2 and [s for s, _ in curves["train/loss"]] == [s for s, _ in losses]
    assert [v for _, v in curves["train/loss"]] == pytest.approx([v for _, v in losses], rel=1e-5)
    evals = [e for e in events if e["type"] == "eval"]
    key = "eval/accuracy" if run.read_eval()["task"] != "chat" else "eval/loss"
    assert len(curves[key]) == len(evals) >= 1
    final = "final/accuracy" if key == "eval/accuracy" else "final/eval_loss"
    assert curves[final][0][1] == pytest.approx(run.read_eval()["tuned"][final.split("/")[1]], rel=1e-5)


def test_the_settings_reach_the_hparams_tab(tmp_path_factory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = support_runs.head_only_text_run(tmp_path_factory)
    accumulator = EventAccumulator(str(run.path / "tensorboard"))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = {k: v.string_value or v.number_value for k, v in data.session_start_info.hparams.items()}
    assert hparams["strategy"] == "head-only" and hparams["data"] == "train.csv"
    assert hparams["train.seed"] == 0 and "train.learning_rate" in hparams
    assert "config/text_summary" in accumulator.PluginTagToContent("text")


def test_report_to_refuses_trackers_that_are_not_installed(home, tmp_path, monkeypatch):
    config = JobConfig(task="chat", model="smollm2-135m-instruct", strategy="lora")
    config.data.path = str(tmp_path / "chat.jsonl")
    config.train.report_to = ["mlflow", "tensorboard"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else object())
    with pytest.raises(ConfigError, match=r"mlflow package is not installed here: install it \(pip install mlflow\)"):
        run_job(config, home)
    assert not home.runs.exists() or not any(home.runs.iterdir())  # refused before a run folder was made
    config.train.report_to = ["neptune"]
    assert "use any of tensorboard, mlflow, trackio, wandb" in " ".join(config.problems())
    raw = JobConfig.from_yaml("task: chat\ndata: {path: x.jsonl}\ntrain: {report_to: wandb}\n")
    assert raw.train.report_to == ["wandb"]  # one name is a list of one


def test_installed_trackers_are_handed_to_the_trainer(tmp_path, monkeypatch):
    from core.engine.chat.recipe import ChatRecipe
    from tests.test_chat_support import context

    ctx, _ = context(tmp_path, report_to=["tensorboard", "mlflow"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert ctx.config.problems() == []
    assert trainer_report_to(ctx.config) == ["mlflow"]  # TensorBoard files come from the studio's own sink
    arguments = ChatRecipe(ctx)._arguments(evaluating=False)
    assert arguments.report_to == ["mlflow"] and arguments.run_name == ctx.run.name
    ctx.config.train.report_to = []
    assert ChatRecipe(ctx)._arguments(evaluating=False).report_to in ("none", ["none"], [])


class _Lines(logging.Handler):
    """The studio logger's records (the CLI and the job manager rewire the root handlers caplog relies on)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"


@pytest.fixture
def studio_log():
    handler, logger = _Lines(), logging.getLogger("studio")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_a_head_only_run_says_report_to_does_not_reach_it(tmp_path, studio_log):
    run = RunDir.create(tmp_path, "head", "text-classification")
    config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only")
    config.train.report_to = ["wandb"]
    config.save(run.config)
    sink = TensorBoardSink(run)
    sink.log({"type": "status", "status": "training"})
    assert "train.report_to (wandb) reaches runs trained with the transformers Trainer" in studio_log.text
    sink.close()


def test_without_tensorboard_installed_a_run_still_trains(tmp_path, monkeypatch, studio_log):
    run = RunDir.create(tmp_path, "plain", "chat")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it now fails
    sink = TensorBoardSink(run)
    sink.log({"type": "train", "step": 1, "loss": 2.0})
    sink.log({"type": "train", "step": 2, "loss": 1.5})
    sink.close()
    assert studio_log.text.count("pip install tensorboard") == 1 and not (run.path / "tensorboard").exists()

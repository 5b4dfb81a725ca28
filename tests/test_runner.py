"""The runner end to end: a job from a file to a complete run folder, and its config.yaml reruns it."""
import dataclasses
import json
import threading

import pytest
import yaml

from core.cli import main
from core.config import JobConfig
from core.engine.events import ListSink, read_events
from core.runs import list_runs
from core.engine.runner import JobFailed, run_job
from tests.test_chat_support import conversations, tiny_model_folder


@pytest.fixture
def chat_job(tmp_path):
    folder = tiny_model_folder(tmp_path)
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps({"messages": m}) for m in conversations(60)), encoding="utf-8")
    config = JobConfig(task="chat", model=str(folder), strategy="lora", name="tiny chat")
    config.data.path = str(data)
    config.train.epochs = 2
    config.train.learning_rate = 3e-3
    config.train.threads = 1
    return config


def test_a_chat_job_leaves_a_complete_run_folder(chat_job, home):
    sink = ListSink()
    run = run_job(chat_job, home, sinks=[sink])
    assert run.read_status()["status"] == "completed"
    filled = JobConfig.load(run.config)
    # Every preset is written down, so the file alone reproduces the run.
    for field in ("batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha", "eval_every", "save_every"):
        assert getattr(filled.train, field), field
    events = read_events(run.metrics)
    assert events == sink.events  # metrics.jsonl holds exactly what the live sink saw
    losses = [e["loss"] for e in events if e["type"] == "train" and "loss" in e]
    assert len(losses) >= 4 and losses[-1] < losses[0]
    assert any(e["type"] == "eval" and "eval_loss" in e for e in events)
    assert [e["status"] for e in events if e["type"] == "status"][-2:] == ["evaluating", "completed"]
    assert (run.model / "adapter_config.json").is_file() and (run.model / "adapter_model.safetensors").is_file()
    report = run.read_eval()
    assert report["tuned"]["eval_loss"] < report["base"]["eval_loss"]
    card = run.card.read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["library_name"] == "peft" and "chat" in metadata["tags"]
    assert "Training rows: " in card and "eval_loss" in card
    assert "Memory: About" in run.log.read_text()
    estimate = json.loads(run.memory_estimate.read_text())  # what the runner checked, kept for the bench
    assert estimate["fits"] and estimate["total_gb"] > 0 and estimate["image_side"] is None


def test_the_saved_config_reruns_from_the_command_line(chat_job, home, capsys):
    first = run_job(chat_job, home)
    assert main(["train", str(first.config), "--home", str(home.root), "--set", "name=rerun"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    second = [r for r in list_runs(home.runs) if r.path != first.path][0]
    assert out[-1] == str(second.path)
    assert second.read_status()["status"] == "completed"
    a, b = first.read_eval(), second.read_eval()
    assert b["tuned"]["eval_loss"] == pytest.approx(a["tuned"]["eval_loss"], rel=1e-4)  # seeded: same run


def test_a_data_problem_fails_the_job_with_every_problem_listed(home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\n,\n,\n", encoding="utf-8")
    config = JobConfig(task="chat", model=str(tiny_model_folder(tmp_path)), strategy="lora")
    config.data.path = str(bad)
    with pytest.raises(JobFailed) as err:
        run_job(config, home)
    run = list_runs(home.runs)[0]
    status = run.read_status()
    assert status["status"] == "failed" and status["message"] == str(err.value)
    assert "has no usable rows" in str(err.value) and "Fix:" in str(err.value)


def test_an_unknown_model_offline_fails_plainly(home, tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps({"messages": m}) for m in conversations(20)), encoding="utf-8")
    config = JobConfig(task="chat", model="nobody/no-such-model-xyz", strategy="lora")
    config.data.path = str(data)
    with pytest.raises(JobFailed, match="nobody/no-such-model-xyz"):
        run_job(config, home)
    assert "Traceback" not in list_runs(home.runs)[0].read_status()["message"]


def test_stop_before_training_keeps_a_consistent_run(chat_job, home):
    stop = threading.Event()
    stop.set()
    run = run_job(chat_job, home, stop=stop)
    assert run.read_status()["status"] == "stopped"


def test_eval_and_export_from_the_command_line(chat_job, home, tmp_path, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = run_job(chat_job, home)
    before = run.read_eval()
    assert main(["eval", str(run.path), "--home", str(home.root)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tuned"]["eval_loss"] == pytest.approx(before["tuned"]["eval_loss"], rel=1e-4)

    merged = tmp_path / "merged"
    assert main(["export", str(run.path), "--merged", str(merged), "--zip", str(tmp_path / "zips"),
                 "--home", str(home.root)]) == 0
    assert (merged / "model.safetensors").is_file() and (merged / "README.md").is_file()
    assert not (merged / "adapter_config.json").exists()
    # The merged weights compute what base + adapter computed.
    tokenizer = AutoTokenizer.from_pretrained(merged)
    ids = tokenizer("What colour is the sky?", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(chat_job.model)
    with torch.no_grad():
        expected = PeftModel.from_pretrained(base, run.model).eval()(**ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged).eval()(**ids).logits
    assert torch.allclose(expected, got, atol=1e-4)
    zipped = tmp_path / "zips" / f"{run.name}.zip"
    import zipfile
    names = zipfile.ZipFile(zipped).namelist()
    assert f"{run.name}/config.yaml" in names and f"{run.name}/model/adapter_model.safetensors" in names
    assert not any("/checkpoints/" in n for n in names)
    # A second export into the same folder is refused rather than mixing two models.
    assert main(["export", str(run.path), "--merged", str(merged), "--home", str(home.root)]) == 1
    assert "not empty" in capsys.readouterr().err


def test_pushing_to_the_hub_offline_says_so(chat_job, home, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = run_job(chat_job, home)
    assert main(["export", str(run.path), "--hub", "me/model", "--token", "x", "--home", str(home.root)]) == 1
    assert "offline" in capsys.readouterr().err


def test_a_text_lora_run_exports_a_merged_classifier(home, bert_dir, tmp_path):
    import pandas as pd
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.export import export_merged
    from core.inference.classify import Classifier
    from tests.test_classify_support import text_rows

    rows = text_rows(60, 5)
    names = ["sport", "weather", "food"]
    csv = tmp_path / "topics.csv"
    pd.DataFrame({"text": rows["text"], "topic": [names[i] for i in rows["label"]]}).to_csv(csv, index=False)
    config = JobConfig(task="text-classification", model=str(bert_dir), strategy="lora")
    config.data.path = str(csv)
    config.train.max_steps = 6
    config.train.learning_rate = 1e-2
    config.train.threads = 1
    run = run_job(config, home)
    merged = export_merged(run.path, tmp_path / "merged", home)
    model = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    text = "rain and storm today"
    with torch.no_grad():
        probs = model(**tokenizer(text, return_tensors="pt")).logits.softmax(-1)[0]
    merged_top = model.config.id2label[int(probs.argmax())]
    tuned = Classifier.from_run(run.path, home).predict(text, which="tuned")
    assert merged_top == tuned[0][0]
    assert float(probs.max()) == pytest.approx(tuned[0][1], abs=1e-3)


def test_a_merged_export_cut_short_leaves_nothing_behind_and_can_be_redone(chat_job, home, tmp_path, monkeypatch):
    from core import export

    run = run_job(chat_job, home)
    target = tmp_path / "exports" / "merged"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    real = export._write_merged
    monkeypatch.setattr(export, "_write_merged", lambda run, config, home, out, say: (
        (out / "model-00001.safetensors").write_bytes(b"half"), disk_full()))
    with pytest.raises(OSError):
        export.export_merged(run.path, target, home)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no partial folder left beside it either
    monkeypatch.setattr(export, "_write_merged", real)
    assert (export.export_merged(run.path, target, home) / "config.json").is_file()


def test_the_jobs_trust_remote_code_setting_reaches_the_loaders(chat_job, home, monkeypatch):
    from core import plan as planner
    from core.models import load_tokenizer

    seen = []
    real = planner.resolve_for

    def spy(config, home, progress=None):
        resolved = real(config, home, progress)
        seen.append(resolved.trust_remote_code)
        return resolved

    monkeypatch.setattr(planner, "resolve_for", spy)
    chat_job.trust_remote_code = True
    chat_job.train.max_steps = 1
    run_job(chat_job, home)
    assert seen == [True]
    resolved = planner.resolve_for(dataclasses.replace(chat_job, trust_remote_code=False), home)
    assert resolved.trust_remote_code is False and load_tokenizer(resolved) is not None


def test_training_stack_imports_once_from_many_threads():
    """Threads that need transformers at the same moment wait for one import instead of racing in it."""
    import threading

    from core import stack

    errors = []

    def need_it():
        try:
            stack.load()
            from transformers import AutoTokenizer, Trainer  # noqa: F401
        except Exception as exc:  # pragma: no cover - what the lock prevents
            errors.append(exc)

    threads = [threading.Thread(target=need_it) for _ in range(4)] + [stack.warm_up()]
    for t in threads[:4]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert stack._loaded


def test_a_phases_progress_is_logged_once():
    """Progress updates repeat their phase's message: train.log gets it once, not once per batch."""
    import logging

    from core.engine.events import Reporter

    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    studio_logger, handler = logging.getLogger("studio"), Keep(level=logging.INFO)
    studio_logger.addHandler(handler)  # as the runner's train.log handler is (the logger may not propagate)
    level = studio_logger.level
    studio_logger.setLevel(logging.INFO)
    try:
        reporter = Reporter(None, [])
        reporter.phase("tokenizing", "Writing the base model's answers")
        for done in (16, 32, 48):
            reporter.phase("tokenizing", "Writing the base model's answers", current=done, total=48)
        reporter.phase("loading", "Computing features", current=1, total=2)
        reporter.phase("loading", "Computing features", current=2, total=2)
        reporter.phase("tokenizing", "Writing the base model's answers")
    finally:
        studio_logger.removeHandler(handler)
        studio_logger.setLevel(level)
    assert said == ["Writing the base model's answers", "Computing features", "Writing the base model's answers"]

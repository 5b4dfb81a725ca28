"""Domain adaptation on documents with the tiny chat model: LoRA end to end from the CLI (blocks, perplexity base
vs tuned, probe, continuations, card, playground, eval on other documents), a full fine-tune and QLoRA."""
from __future__ import annotations

import json

import pytest

from core.cli import main
from core.config import JobConfig
from core.data import load_data
from core.engine.events import read_events
from core.engine.runner import run_job
from core.home import Home
from core.runs import RunDir
from tests.support_documents import manual_folder
from tests.test_chat_support import tiny_model_folder


def job(root, strategy="lora", **train) -> JobConfig:
    config = JobConfig(task="text-completion", model=str(tiny_model_folder(root)), strategy=strategy,
                       name=f"manuals {strategy}")
    config.data.path = str(manual_folder(root / "manuals"))
    settings = dict(threads=1, epochs=2.0, learning_rate=3e-3, max_length=64, eval_every=10)
    settings.update(train)
    for key, value in settings.items():
        setattr(config.train, key, value)
    return config


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    home = Home.resolve(root / "home")
    job(root).save(root / "job.yaml")
    assert main(["train", str(root / "job.yaml"), "--home", str(home.root)]) == 0
    (run,) = [RunDir(p) for p in home.runs.iterdir()]
    return root, home, run


def test_lora_lowers_perplexity_on_held_out_documents(lora_run):
    root, _, run = lora_run
    assert run.read_status()["status"] == "completed"
    report = run.read_eval()
    assert report["task"] == "text-completion" and report["block_length"] == 64
    base, tuned = report["base"], report["tuned"]
    assert tuned["perplexity"] < base["perplexity"] and report["change"]["perplexity"] < 0
    assert {"eval_loss", "perplexity"} == set(base) == set(tuned)
    summary = json.loads(run.data_summary.read_text())
    assert report["blocks"] == summary["blocks"]["validation"]  # the blocks the data step counted are scored
    assert report["tokens"] == 63 * report["blocks"] or report["tokens"] > 60 * (report["blocks"] - 1)
    example = report["examples"][0]
    assert {"prompt", "reference", "base", "tuned"} <= set(example) and example["reference"]
    assert report["probe"]["questions"] > 0 and "merged export" in report["next_step"]


def test_training_sees_exactly_the_counted_blocks(lora_run):
    _, _, run = lora_run
    summary = json.loads(run.data_summary.read_text())
    log = run.log.read_text()
    assert f"{summary['blocks']['train']} training blocks and {summary['blocks']['validation']} held-out blocks" in log
    events = read_events(run.metrics)
    assert any(e["type"] == "eval" and "eval_loss" in e for e in events)
    assert any(e["type"] == "train" and e.get("tokens_per_s") for e in events)


def test_card_playground_and_eval_on_other_documents(lora_run, tmp_path):
    from core.inference.chat import ChatModel

    root, home, run = lora_run
    card = run.card.read_text()
    assert "Perplexity on" in card and "## Go on to chat tuning" in card and "--merged domain-model/" in card
    chat = ChatModel.from_run(run.path, home)
    assert isinstance(chat.generate([{"role": "user", "content": "How often do pumps need care?"}],
                                    max_new_tokens=4, temperature=0), str)
    other = manual_folder(tmp_path / "other", ["anchors", "ropes"])
    assert main(["eval", str(run.path), "--data", str(other), "--home", str(home.root)]) == 0
    report = json.loads((run.path / "eval-other.json").read_text())
    assert report["blocks"] > 0 and report["tuned"]["perplexity"] < report["base"]["perplexity"]


@pytest.mark.parametrize("strategy", ["full", "qlora"])
def test_full_and_qlora_train_a_few_steps(tmp_path, strategy):
    run = run_job(job(tmp_path, strategy, max_steps=3, learning_rate=1e-3), Home.resolve(tmp_path / "home"))
    assert run.read_status()["status"] == "completed"
    saved = "model.safetensors" if strategy == "full" else "adapter_config.json"
    assert (run.model / saved).is_file()
    report = run.read_eval()
    assert report["base"]["perplexity"] > 0 and report["tuned"]["perplexity"] > 0


def test_the_plan_fills_the_block_length_and_counts_the_blocks(tmp_path):
    from core.hardware import detect_hardware
    from core.plan import plan_job

    config = job(tmp_path, max_length=None)
    plan = plan_job(config, Home.resolve(tmp_path / "home"), detect_hardware())
    assert plan.ok, plan.problems
    assert plan.config.train.max_length == 256 and plan.config.train.beta is None
    blocks = plan.data.summary["blocks"]
    assert blocks["length"] == 256 and blocks["train"] >= 1
    assert blocks["train"] / 2 <= len(plan.data.train) <= 2 * blocks["train"]  # sections: about one block each


def test_data_without_a_tokenizer_has_the_same_sections(tmp_path):
    folder = manual_folder(tmp_path / "m")
    data = load_data(folder, max_length=64)
    assert data.report.ok and "blocks" not in data.summary and len(data.train) > 10

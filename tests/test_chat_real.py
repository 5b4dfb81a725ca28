"""A few real steps of chat LoRA and QLoRA on the packaged SmolLM2-135M-Instruct (offline)."""
from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from core.config import DataConfig, JobConfig, TrainConfig
from core.engine.chat import ChatRecipe
from core.engine.context import TrainContext
from core.engine.events import ListSink, Reporter
from core.runs import RunDir
from core.hardware import detect_hardware

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "assets/examples/kettlebird_support.csv"


def _data():
    from datasets import Dataset

    if EXAMPLE.is_file():
        from core.data import load_data
        rows = list(load_data(EXAMPLE, task="chat").train["messages"])
    else:
        rows = [[{"role": "user", "content": f"How do I descale kettle model {i}?"},
                 {"role": "assistant", "content": f"Fill model {i} with vinegar and water, boil, rinse twice."}]
                for i in range(16)]
    return SimpleNamespace(task="chat", train=Dataset.from_dict({"messages": rows[:8]}),
                           validation=Dataset.from_dict({"messages": rows[8:11]}), labels=None, summary={})


def _run(tmp_path, home, strategy, steps=3):
    from core.models import resolve_model

    config = JobConfig(task="chat", strategy=strategy, data=DataConfig(path=str(EXAMPLE)),
                       train=TrainConfig(max_steps=steps, learning_rate=1e-3, batch_size=2, grad_accum=1,
                                         max_length=128, lora_r=8, lora_alpha=16, eval_every=steps, save_every=steps,
                                         threads=2, lora_dropout=0.0))
    run = RunDir.create(Path(tmp_path), "real", "chat")
    sink = ListSink()
    ctx = TrainContext(config=config, home=home, run=run, data=_data(),
                       model=resolve_model(config.model, home, task="chat"), reporter=Reporter(run.metrics, [sink]),
                       stop=threading.Event(), hardware=detect_hardware())
    recipe = ChatRecipe(ctx)
    recipe.setup()
    outcome = recipe.train()
    recipe.save()
    return ctx, sink, recipe, outcome


def test_smollm2_chat_lora_a_few_steps(tmp_path, packaged_home):
    ctx, sink, recipe, outcome = _run(tmp_path, packaged_home, "lora")
    losses = [e["loss"] for e in sink.of_type("train") if "loss" in e]
    assert outcome.global_step == 3 and all(math.isfinite(x) for x in losses)
    assert (ctx.run.model / "adapter_model.safetensors").is_file()
    # general replay (the default): the real base model's own answers, whole sentences, trained beside the 8 rows
    replayed = [json.loads(line)["messages"] for line in ctx.run.replay.read_text().splitlines()]
    assert len(replayed) == len(recipe.replayed) == 2 and len(recipe.train_rows) == 10
    assert all(len(answer["content"].split()) >= 3 for _, answer in replayed)
    report = recipe.evaluate()
    assert math.isfinite(report["base"]["eval_loss"]) and math.isfinite(report["tuned"]["eval_loss"])
    assert report["examples"] and report["examples"][0]["base"]  # the instruct model answers something
    recipe.cleanup()


def test_smollm2_chat_qlora_runs(tmp_path, packaged_home):
    torch.manual_seed(0)
    ctx, sink, recipe, outcome = _run(tmp_path, packaged_home, "qlora", steps=2)
    losses = [e["loss"] for e in sink.of_type("train") if "loss" in e]
    assert outcome.global_step == 2 and losses and all(math.isfinite(x) for x in losses)
    assert (ctx.run.model / "adapter_config.json").is_file()
    recipe.cleanup()

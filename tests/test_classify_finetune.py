"""LoRA and full fine-tuning of tiny text and image classifiers through the Trainer, saved and reloaded."""
import json

import pytest

from core.engine.recipes import recipe_for
from core.engine.events import ListSink
from tests.test_classify_support import run_recipe, image_data, losses, make_context, text_data


@pytest.mark.parametrize("strategy,files", [
    ("lora", ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json")),
    ("full", ("config.json", "model.safetensors", "tokenizer.json")),
])
def test_text_fine_tuning(home, bert_dir, strategy, files):
    sink = ListSink()
    lr = 1e-2 if strategy == "lora" else 1e-2  # a random tiny BERT needs a push
    ctx = make_context(home, str(bert_dir), "text-classification", strategy, text_data(), sink, epochs=4,
                       learning_rate=lr, eval_every=6, save_every=12)
    outcome, report = run_recipe(ctx)
    assert outcome.global_step == 24 and not outcome.stopped
    curve = losses(sink)
    assert sum(curve[-3:]) < sum(curve[:3])  # averaged: single log points are noisy
    evals = sink.of_type("eval")
    assert evals and {"accuracy", "macro_f1", "eval_loss"} <= set(evals[-1])
    assert any("samples_per_s" in e for e in sink.of_type("train"))
    for name in (*files, "labels.json", "classifier.json", "base_centroids.safetensors"):
        assert (ctx.run.model / name).is_file(), name
    assert ctx.run.last_checkpoint() is not None
    assert {"tuned", "base", "majority", "tfidf_logreg"} <= set(report)
    assert report["tuned"]["accuracy"] > report["majority"]["accuracy"]


def test_lora_resumes_from_a_checkpoint(home, bert_dir):
    data = text_data()
    first = make_context(home, str(bert_dir), "text-classification", "lora", data, epochs=2, learning_rate=5e-3,
                         save_every=6, eval_every=6)
    run_recipe(first)
    checkpoint = first.run.checkpoints / "checkpoint-6"
    assert checkpoint.is_dir()
    sink = ListSink()
    again = make_context(home, str(bert_dir), "text-classification", "lora", data, sink, run=first.run, epochs=2,
                         learning_rate=5e-3, save_every=6, eval_every=6)
    again.resume_from = checkpoint
    outcome, _ = run_recipe(again)
    assert outcome.global_step == 12
    assert min(e["step"] for e in sink.of_type("train") if "loss" in e) > 6


@pytest.mark.parametrize("strategy,files", [
    ("lora", ("adapter_config.json", "adapter_model.safetensors")),
    ("full", ("config.json", "model.safetensors")),
])
def test_vit_fine_tuning(home, vit_dir, tmp_path, strategy, files):
    sink = ListSink()
    ctx = make_context(home, str(vit_dir), "image-classification", strategy, image_data(tmp_path), sink, epochs=3,
                       learning_rate=5e-3, eval_every=3)
    outcome, report = run_recipe(ctx)
    assert outcome.global_step == 9
    assert losses(sink)[-1] < losses(sink)[0]
    for name in (*files, "labels.json", "classifier.json", "base_centroids.safetensors"):
        assert (ctx.run.model / name).is_file(), name
    info = json.loads((ctx.run.model / "classifier.json").read_text())
    assert info["image_size"] == 32 and info["strategy"] == strategy
    assert "pixel_logreg" in report and report["tuned"]["accuracy"] >= report["majority"]["accuracy"]


def test_lora_is_refused_for_efficientnet(home, tmp_path):
    with pytest.raises(ValueError, match="LoRA needs a transformer"):
        recipe_for(make_context(home, "efficientnet-lite0", "image-classification", "lora",
                                      image_data(tmp_path, 6, 3)))

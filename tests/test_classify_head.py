"""Head-only classifiers end to end on tiny models: features cached once, a head trained, eval.json honest."""
import json
import threading

import numpy as np
import pytest
import torch

from core.engine.classify import HeadOnlyRecipe
from core.engine.recipes import recipe_for
from core.engine.classify.head import HeadSettings, fit_head, tap_scores
from core.engine.events import ListSink
from tests.test_classify_support import run_recipe, image_data, losses, make_context, text_data

EVAL_KEYS = {"tuned", "base", "majority", "baselines", "deltas", "per_class", "confusion_matrix", "misclassified",
             "labels", "examples"}


def test_head_only_text_end_to_end(home, bert_dir):
    sink = ListSink()
    ctx = make_context(home, str(bert_dir), "text-classification", "head-only", text_data(), sink, epochs=20)
    outcome, report = run_recipe(ctx)
    assert not outcome.stopped and outcome.global_step == 20 * 6
    curve = losses(sink)
    assert curve[-1] < curve[0] * 0.5
    evals = sink.of_type("eval")
    assert len(evals) == 20 and {"accuracy", "eval_loss", "macro_f1"} <= set(evals[-1])
    caching = [e for e in sink.of_type("phase") if e["phase"] == "caching"]
    assert caching and caching[-1]["current"] == caching[-1]["total"]
    for name in ("head.safetensors", "labels.json", "head_config.json", "classifier.json",
                 "base_centroids.safetensors"):
        assert (ctx.run.model / name).is_file(), name
    assert (ctx.run.path / "features.safetensors").is_file()
    assert EVAL_KEYS <= set(report) and "tfidf_logreg" in report
    assert report["tuned"]["accuracy"] > 0.8
    assert len(report["confusion_matrix"]["matrix"]) == 3
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == report["examples"] == 24
    assert report["deltas"]["majority"]["accuracy"] == pytest.approx(
        report["tuned"]["accuracy"] - report["majority"]["accuracy"])
    json.dumps(report)  # eval.json must serialise


def test_head_only_image_chooses_a_tap(home, vit_dir, tmp_path):
    sink = ListSink()
    ctx = make_context(home, str(vit_dir), "image-classification", "head-only", image_data(tmp_path), sink,
                       epochs=15)
    outcome, report = run_recipe(ctx)
    assert not outcome.stopped
    assert losses(sink)[-1] < losses(sink)[0]
    assert any("Feature depth" in e["message"] for e in sink.of_type("log"))
    config = json.loads((ctx.run.model / "head_config.json").read_text())
    assert config["tap_name"] in ("layer1", "layer2", "pooled") and config["input_size"] == 32
    assert "pixel_logreg" in report and report["head"]["taps"] == 3
    assert report["tuned"]["accuracy"] >= 0.9  # colours are easy
    assert report["misclassified"] == [] or report["misclassified"][0]["item"].endswith(".png")


def test_features_are_cached_and_reused(home, bert_dir):
    data = text_data()
    first = make_context(home, str(bert_dir), "text-classification", "head-only", data)
    HeadOnlyRecipe(first).setup()
    sink = ListSink()
    second = make_context(home, str(bert_dir), "text-classification", "head-only", data, sink, run=first.run)
    recipe = HeadOnlyRecipe(second)
    recipe.setup()
    assert any("cached" in e["message"] for e in sink.of_type("log"))
    assert not [e for e in sink.of_type("phase") if e["phase"] == "caching"]
    assert recipe.features.train[0].shape == (48, 32)


def test_stop_mid_training_keeps_a_head(home, bert_dir):
    class StopAt(ListSink):
        def __init__(self, stop):
            super().__init__()
            self.stop = stop

        def log(self, event):
            super().log(event)
            if event["type"] == "train" and event.get("step") == 5:
                self.stop.set()

    ctx = make_context(home, str(bert_dir), "text-classification", "head-only", text_data(), epochs=50)
    sink = StopAt(ctx.stop)
    ctx.reporter.sinks.append(sink)
    recipe = recipe_for(ctx)
    recipe.setup()
    outcome = recipe.train()
    recipe.save()
    assert outcome.stopped and outcome.global_step == 5
    assert (ctx.run.model / "head.safetensors").is_file()


def test_tap_scores_find_the_informative_tap():
    torch.manual_seed(0)
    labels = [i % 3 for i in range(60)]
    noise = torch.randn(60, 16)
    informative = torch.randn(60, 16) * 0.3 + torch.nn.functional.one_hot(torch.tensor(labels), 16).float() * 3
    scores = tap_scores([noise, informative], labels, 3)
    assert scores[1] > 0.9 > scores[0]


def test_fit_head_respects_stop_before_the_first_step():
    stop = threading.Event()
    stop.set()
    head, result = fit_head(torch.randn(10, 4), [0, 1] * 5, 2, HeadSettings(epochs=3), stop)
    assert result.stopped and result.steps == 0
    assert head(torch.randn(2, 4)).shape == (2, 2)


def test_fit_head_is_deterministic():
    x, y = torch.randn(40, 8), [i % 2 for i in range(40)]
    a, _ = fit_head(x, y, 2, HeadSettings(epochs=3, batch_size=8))
    b, _ = fit_head(x, y, 2, HeadSettings(epochs=3, batch_size=8))
    assert np.allclose(a.linear.weight.detach().numpy(), b.linear.weight.detach().numpy())


def test_runner_trains_a_head_from_a_csv(home, bert_dir, tmp_path):
    import csv

    from core.config import DataConfig, JobConfig, TrainConfig
    from core.engine.runner import run_job
    from tests.test_classify_support import WORDS, text_rows

    rows = text_rows(90, 3)
    path = tmp_path / "topics.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "topic"])
        writer.writerows((t, list(WORDS)[label]) for t, label in zip(rows["text"], rows["label"]))
    config = JobConfig(task="text-classification", model=str(bert_dir), strategy="head-only",
                       data=DataConfig(path=str(path)), train=TrainConfig(preset="quick", threads=1))
    sink = ListSink()
    run = run_job(config, home, [sink])
    assert run.read_status()["status"] == "completed"
    report = run.read_eval()
    assert report["tuned"]["accuracy"] > report["majority"]["accuracy"]
    assert run.card.is_file() and (run.model / "head.safetensors").is_file()

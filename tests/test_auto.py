"""strategy: auto on tiny models: the default for classifiers, a leaderboard, its budget, its seed, and a saved
winner that inference and ``studio eval`` load whatever it is."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.config import JobConfig
from core.engine.classify import auto
from core.engine.classify.objective import Classification
from core.engine.classify.search import Candidate, Leaderboard
from core.engine.recipes import recipe_for
from core.inference.classify import Classifier
from core.presets import search_budget_seconds
from tests.test_classify_support import image_data, make_context, run_recipe, text_data

AUTO = {"epochs": None, "learning_rate": None}


def test_auto_is_the_default_for_classifiers_and_lora_for_chat():
    text = JobConfig.from_yaml("task: text-classification\nmodel: minilm-l6\ndata: {path: a.csv}")
    image = JobConfig.from_yaml("task: image-classification\nmodel: efficientnet-lite0\ndata: {path: x}")
    chat = JobConfig.from_yaml("task: chat\ndata: {path: a.csv}")
    assert (text.strategy, image.strategy, chat.strategy) == ("auto", "auto", "lora")
    assert not text.problems() and JobConfig.from_yaml(text.to_yaml()).strategy == "auto"


def test_budget_is_stated_by_preset_rows_and_time_limit():
    assert search_budget_seconds("balanced", 300, None) < 120  # a few hundred rows: under two minutes
    assert search_budget_seconds("thorough", 300, None) > search_budget_seconds("quick", 300, None)
    assert search_budget_seconds("balanced", 2000, None) > search_budget_seconds("balanced", 300, None)
    assert search_budget_seconds("thorough", 300, 0.5) == 30


def test_auto_text_leaderboard_verdict_and_reload(home, bert_dir):
    ctx = make_context(home, str(bert_dir), "text-classification", "auto", text_data(), **AUTO, max_minutes=1)
    _, report = run_recipe(ctx)
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    assert board["winner"] and board["why"] and board["used_s"] <= board["budget_s"] + 5
    scored = [c for c in board["candidates"] if c["status"] == "scored"]
    assert len(scored) >= 4 and all(c["seconds"] >= 0 for c in scored)
    assert {"LoRA", "Full"} <= {c["name"].split()[0] for c in board["candidates"] if c["kind"] == "fine-tune"}
    assert any("TF-IDF" in c["name"] for c in scored)
    assert report["search"]["winner"] == report["winner"] == board["winner"]
    assert report["verdict"]["status"] in ("tuned-wins", "tie", "baseline-wins") and report["verdict"]["message"]
    assert report["tuned"]["accuracy"] > report["majority"]["accuracy"]
    info = json.loads((ctx.run.model / "classifier.json").read_text())
    assert info["search"] == "auto" and info["winner"] == board["winner"]
    assert any(e["message"].startswith("Automatic search: at most") for e in ctx.reporter.sinks[0].of_type("log"))
    assert [e["name"] for e in ctx.reporter.sinks[0].of_type("winner")] == [board["winner"]]  # the page marks it
    classifier = Classifier.from_run(ctx.run.path, home)
    ranked = classifier.predict("rain and storm and wind today")
    assert ranked[0][0] == "weather" and sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-4)
    again = recipe_for(ctx)
    again.load_trained()
    reloaded = again.evaluate()
    again.cleanup()
    assert reloaded["tuned"]["accuracy"] == pytest.approx(report["tuned"]["accuracy"])
    assert reloaded["search"]["winner"] == board["winner"]


def test_auto_respects_a_tiny_budget(home, bert_dir):
    ctx = make_context(home, str(bert_dir), "text-classification", "auto", text_data(), **AUTO, max_minutes=0.02)
    run_recipe(ctx)
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    assert board["budget_s"] == pytest.approx(1.2)
    assert board["used_s"] < 10  # the features are computed, then at most one more view fits
    skipped = [c for c in board["candidates"] if c["status"] == "skipped"]
    assert skipped and all(c["note"].startswith("not run") for c in skipped)
    assert (ctx.run.model / "head.safetensors").is_file()  # something is always kept


def test_auto_is_reproducible_with_a_seed(home, bert_dir):
    def search():
        ctx = make_context(home, str(bert_dir), "text-classification", "auto", text_data(), **AUTO,
                           max_minutes=0.5)
        recipe = recipe_for(ctx)
        recipe.setup()
        recipe.train()
        probs = recipe.tuned_probs()
        board = recipe.board.to_dict()
        recipe.cleanup()
        return probs, [(c["name"], c["cv_accuracy"]) for c in board["candidates"] if c["kind"] == "head"]

    first, second = search(), search()
    assert first[1] == second[1]
    assert np.allclose(first[0], second[0], atol=1e-6)


def test_auto_image_head_on_taps_and_pixels_loads(home, vit_dir, tmp_path):
    data = image_data(tmp_path)
    ctx = make_context(home, str(vit_dir), "image-classification", "auto", data, **AUTO, max_minutes=0.3)
    _, report = run_recipe(ctx)
    assert "pixel_logreg" in report and report["tuned"]["accuracy"] >= 0.9
    names = [c["name"] for c in report["search"]["candidates"]]
    assert any("raw pixels" in n for n in names) and any("all 3 taps" in n or "layer" in n for n in names)
    classifier = Classifier.from_run(ctx.run.path, home)
    batch = classifier.predict_batch(data.validation["image"][:4])
    assert batch.shape == (4, 3) and np.allclose(batch.sum(axis=1), 1, atol=1e-4)


def test_a_fine_tune_winner_is_saved_and_loads(home, bert_dir, monkeypatch):
    monkeypatch.setattr(auto, "FINE_TUNE_MARGIN", -1.0)  # let any scored fine-tune win
    monkeypatch.setattr(auto.AutoRecipe, "_paired_gap", lambda *_: (1.0, 0.0))
    monkeypatch.setattr(auto, "FINE_TUNE_EPOCHS", 2)
    ctx = make_context(home, str(bert_dir), "text-classification", "auto", text_data(), **AUTO, max_minutes=2,
                       lora_r=4)
    _, report = run_recipe(ctx)
    assert report["chosen_strategy"] in ("lora", "full")
    assert (ctx.run.model / "adapter_config.json").is_file() or (ctx.run.model / "model.safetensors").is_file()
    classifier = Classifier.from_run(ctx.run.path, home)
    assert len(classifier.predict("bread and cheese")) == 3


class _Picker(auto.AutoRecipe):
    """Just enough of an automatic search to call ``_pick``: labels and a leaderboard, no model."""

    def __init__(self, labels, fine_tune_right):
        self.objective = Classification(["no", "yes"])
        self.objective.model_row_scores = lambda model, inputs, items, values: fine_tune_right.astype(float)
        self._labels = labels
        self.head_choice = ""
        self.board = Leaderboard(budget_s=1.0, folds=5, rows=len(labels), metric="accuracy", higher_is_better=True)

    def split(self, name):
        return list(range(len(self._labels))), self._labels


@pytest.mark.parametrize("rows_ahead, fine_tune_wins", [(1, False), (3, True)])
def test_a_fine_tune_must_beat_the_head_by_more_than_the_noise_of_the_held_out_rows(rows_ahead, fine_tune_wins):
    """The fine-tune's held-out score is its best epoch on those rows: one row ahead of the head is one paired
    standard error, within the noise, and the head (chosen by cross-validation) is kept; three rows is not."""
    labels = [i % 2 for i in range(100)]
    objective = Classification(["no", "yes"])
    folds = objective.folds(labels, auto.FOLDS, 0)
    held = folds[0][1]
    head_right = np.ones(100, dtype=bool)
    head_right[held[:4]] = False  # the head misses four held-out rows
    probs = np.where(head_right[:, None] == (np.arange(2)[None, :] == np.asarray(labels)[:, None]), 0.9, 0.1)
    head = Candidate("Logistic regression on layer 6", "head", cv_accuracy=0.96, holdout_accuracy=float(
        head_right[held].mean()))
    head._oof = (np.asarray(labels), probs)
    tune_right = head_right[held].copy()
    tune_right[np.flatnonzero(~tune_right)[:rows_ahead]] = True
    tune = Candidate("LoRA fine-tune", "fine-tune", holdout_accuracy=float(tune_right.mean()))
    tune._model = (None, None)
    result = SimpleNamespace(best_score=float(tune_right.mean()))
    picker = _Picker(labels, tune_right)
    chosen = picker._pick((tune, result, "lora", 2e-3), head, folds)
    assert (chosen is not None) == fine_tune_wins, picker.board.why
    assert ("noise" in picker.board.why) != fine_tune_wins

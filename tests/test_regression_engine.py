"""Regression recipes on tiny models: head-only, a LoRA fine-tune, the automatic search, images; eval.json keys,
the saved model's formats, reload for ``studio eval``, Regressor predictions (tuned and base), the merged export,
and the runner from a CSV with batch prediction."""
from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import torch
from datasets import Dataset
from PIL import Image

from core.data.prepared import PreparedData
from core.data.report import DataReport
from core.engine.recipes import recipe_for
from core.inference.regress import Regressor
from tests.test_classify_support import make_context, run_recipe

WEATHER = ["rain", "sun", "cloud", "storm", "wind", "snow"]
FILLER = ["the", "a", "today", "we", "saw", "big", "new", "very", "and", "then"]
AUTO = {"epochs": None, "learning_rate": None}


def text_rows(n: int, seed: int) -> dict:
    """The target is ten times the number of weather words in the text, plus a little noise."""
    rng = random.Random(seed)
    texts, values = [], []
    for _ in range(n):
        k = rng.randint(0, 5)
        words = rng.sample(WEATHER, k) + rng.sample(FILLER, 4)
        rng.shuffle(words)
        texts.append(" ".join(words))
        values.append(10.0 * k + rng.gauss(0, 1))
    return {"text": texts, "target": values}


def image_rows(folder, n: int, seed: int) -> dict:
    """Light noisy squares with 0-5 dark blue dots; the target is the number of dots."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, values = [], []
    for i in range(n):
        count = int(rng.integers(0, 6))
        pixels = (230 + rng.integers(0, 20, (24, 24, 3))).astype(np.uint8)
        for _ in range(count):
            x, y = rng.integers(0, 20, 2)
            pixels[y:y + 4, x:x + 4] = (30, 30, 160)
        path = folder / f"{seed}-{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
        values.append(float(count))
    return {"image": paths, "target": values}


def regression_data(task: str, train: dict, validation: dict) -> PreparedData:
    return PreparedData(task=task, columns={"target": "amount"}, detection=[], train=Dataset.from_dict(train),
                        validation=Dataset.from_dict(validation), labels=None, report=DataReport(), summary={})


def text_data(n_train: int = 60, n_val: int = 24) -> PreparedData:
    return regression_data("text-regression", text_rows(n_train, 1), text_rows(n_val, 2))


def _check_report(report: dict, task: str) -> None:
    json.dumps(report)
    assert {"mae", "rmse", "r2"} <= set(report["tuned"]) and report["target"]["column"] == "amount"
    classical = "tfidf_ridge" if task == "text-regression" else "pixel_ridge"
    assert {b["key"] for b in report["baselines"]} == {"mean", "base", classical}
    assert report["mean"]["r2"] == pytest.approx(0.0, abs=0.2) and "trained" in report["baselines"][1]["title"]
    assert report["verdict"]["status"] in ("tuned-wins", "tie", "baseline-wins") and report["verdict"]["message"]
    assert len(report["points"]["true"]) == len(report["points"]["predicted"]) == report["examples"]
    errors = [abs(w["error"]) for w in report["worst"]]
    assert errors == sorted(errors, reverse=True) and {"item", "true", "predicted"} <= set(report["worst"][0])


def test_head_only_text_regression_trains_saves_reloads_and_predicts(home, bert_dir):
    ctx = make_context(home, str(bert_dir), "text-regression", "head-only", text_data())
    _, report = run_recipe(ctx)
    _check_report(report, "text-regression")
    assert report["tuned"]["mae"] < report["mean"]["mae"] / 3 and report["tuned"]["r2"] > 0.8
    files = {p.name for p in ctx.run.model.iterdir()}
    assert {"head.safetensors", "target.json", "classifier.json", "base_head.safetensors"} <= files
    assert json.loads((ctx.run.model / "target.json").read_text())["column"] == "amount"
    assert ctx.reporter.sinks[0].of_type("train") and ctx.reporter.sinks[0].of_type("eval")
    again = recipe_for(ctx)
    again.load_trained()
    assert again.evaluate()["tuned"]["mae"] == pytest.approx(report["tuned"]["mae"], rel=1e-5)
    again.cleanup()
    regressor = Regressor.from_run(ctx.run.path, home)
    many, few = regressor.predict("rain snow storm wind the a big new"), regressor.predict("the a big new")
    assert many > few + 15 and isinstance(many, float)
    batch = regressor.predict_batch(ctx.data.validation["text"][:5])
    assert batch.shape == (5,) and regressor.predict_batch(["rain sun"], which="base").shape == (1,)
    with pytest.raises(ValueError, match="give some text"):
        regressor.predict("  ")


def test_lora_regression_folds_the_scale_into_the_saved_head_and_merges(home, bert_dir, tmp_path):
    from core.export import export_merged

    ctx = make_context(home, str(bert_dir), "text-regression", "lora", text_data(), epochs=12, learning_rate=3e-3,
                       lora_r=4)
    _, report = run_recipe(ctx)
    _check_report(report, "text-regression")
    assert report["tuned"]["mae"] < report["mean"]["mae"]  # it learnt something, in the target's units
    assert (ctx.run.model / "adapter_config.json").is_file()
    assert {e.get("mae") is not None for e in ctx.reporter.sinks[0].of_type("eval")} == {True}
    regressor = Regressor.from_run(ctx.run.path, home)
    predicted = regressor.predict_batch(ctx.data.validation["text"])
    assert np.abs(predicted - np.array(ctx.data.validation["target"])).mean() == pytest.approx(
        report["tuned"]["mae"], rel=1e-4)
    merged = export_merged(ctx.run.path, tmp_path / "merged", home)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    tokenizer = AutoTokenizer.from_pretrained(merged)
    with torch.no_grad():
        out = model(**tokenizer(ctx.data.validation["text"][:4], padding=True, return_tensors="pt")).logits
    target = json.loads((ctx.run.model / "target.json").read_text())  # the studio keeps answers in this range
    assert np.allclose(np.clip(out.reshape(-1).numpy(), target["min"], target["max"]), predicted[:4], atol=1e-3)


def test_auto_regression_searches_ridge_and_mlp_with_a_leaderboard(home, bert_dir):
    ctx = make_context(home, str(bert_dir), "text-regression", "auto", text_data(), **AUTO, max_minutes=0.5)
    _, report = run_recipe(ctx)
    _check_report(report, "text-regression")
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    assert board["score"] == "mae" and not board["higher_is_better"] and "mean absolute error" in board["metric"]
    scored = [c for c in board["candidates"] if c["status"] == "scored"]
    assert any(c["name"].startswith("Ridge regression") for c in scored) and any("TF-IDF" in c["name"]
                                                                                  for c in scored)
    maes = [c["cv_mae"] for c in scored if c["cv_mae"] is not None]
    assert maes == sorted(maes) and report["search"]["winner"] == board["winner"]
    assert report["tuned"]["mae"] < report["mean"]["mae"] / 2
    again = recipe_for(ctx)
    again.load_trained()
    assert again.evaluate()["tuned"]["mae"] == pytest.approx(report["tuned"]["mae"], rel=1e-5)
    again.cleanup()


def test_image_regression_head_only_and_auto_on_a_tiny_vit(home, vit_dir, tmp_path):
    data = regression_data("image-regression", image_rows(tmp_path / "img", 40, 1),
                           image_rows(tmp_path / "img", 16, 2))
    ctx = make_context(home, str(vit_dir), "image-regression", "head-only", data)
    _, report = run_recipe(ctx)
    _check_report(report, "image-regression")
    assert report["tuned"]["mae"] < report["mean"]["mae"] / 2
    auto = make_context(home, str(vit_dir), "image-regression", "auto", data, **AUTO, max_minutes=0.2)
    _, searched = run_recipe(auto)
    names = [c["name"] for c in searched["search"]["candidates"]]
    assert any("raw pixels" in n for n in names) and not any("augmented" in n for n in names)
    regressor = Regressor.from_run(auto.run.path, home)
    assert regressor.predict_batch(data.validation["image"][:3]).shape == (3,)
    assert isinstance(regressor.predict(Image.open(data.validation["image"][0])), float)


def test_runner_eval_and_batch_prediction_from_a_csv(home, bert_dir, tmp_path):
    from core.config import DataConfig, JobConfig, TrainConfig
    from core.engine.runner import evaluate_run, run_job
    from core.predict import predict_file

    def write(path, rows):
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["note", "rain_mm"])
            writer.writerows(zip(rows["text"], (f"{v:.2f}" for v in rows["target"])))
        return path

    train, test = write(tmp_path / "train.csv", text_rows(80, 3)), write(tmp_path / "test.csv", text_rows(30, 4))
    config = JobConfig(task="text-regression", model=str(bert_dir), strategy="head-only",
                       data=DataConfig(path=str(train)), train=TrainConfig(preset="quick", threads=1))
    run = run_job(config, home, [])
    assert run.read_status()["status"] == "completed", run.read_status()
    report = run.read_eval()
    assert report["tuned"]["mae"] < report["mean"]["mae"] and "mae" in run.card.read_text()
    assert "Regressor.from_run" in run.card.read_text()
    scored = evaluate_run(run.path, home, data_path=str(test))
    assert scored["examples"] == 30 and (run.path / "eval-test.json").is_file()
    result = predict_file(run.path, test, tmp_path / "out.csv", home)
    rows = list(csv.DictReader(open(result.out, encoding="utf-8-sig")))
    assert len(rows) == 30 and {"note", "rain_mm", "predicted_value"} <= set(rows[0])
    assert result.errors["mae"] == pytest.approx(scored["tuned"]["mae"], rel=1e-4)
    assert "Mean absolute error" in result.summary()


def test_auto_regression_scores_every_ridge_view_when_the_features_spent_the_budget(home, bert_dir):
    """Computing the frozen features used the whole budget (a busy CPU): the closed-form ridge views still run (a
    fraction of a second each), TF-IDF included; the MLP and the fine-tunes keep to the budget."""
    ctx = make_context(home, str(bert_dir), "text-regression", "auto", text_data(), **AUTO, max_minutes=1e-4)
    _, report = run_recipe(ctx)
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    ridge = [c for c in board["candidates"] if c["name"].startswith("Ridge regression")]
    assert len(ridge) == 3 and all(c["status"] == "scored" for c in ridge), [(c["name"], c["status"]) for c in ridge]
    assert any(c["name"] == "Ridge regression on TF-IDF" for c in ridge)
    others = [c for c in board["candidates"] if not c["name"].startswith("Ridge regression")]
    assert others and all(c["status"] == "skipped" for c in others)
    assert report["tuned"]["mae"] < report["mean"]["mae"] / 2


@pytest.mark.parametrize("rows,width", [(40, 300), (120, 30)])
def test_ridge_fits_of_one_fold_share_one_gram_matrix_and_match_the_direct_solve(rows, width):
    """Ten penalties on the same features decompose their Gram matrix once (dual and primal forms), and give what
    the direct solve gives."""
    from core.engine.classify.fitting import HeadSpec
    from core.engine.regression import objective as regression_objective

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, width, generator=generator)
    y = x[:, 0] * 2 + torch.randn(rows, generator=generator) * 0.1
    weights = torch.rand(rows, generator=generator) + 0.5
    made = []
    original = regression_objective.Gram.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    objective = regression_objective.Regression(0.0, 1.0)
    regression_objective.Gram.__init__ = counting
    try:
        for l2 in regression_objective.RIDGE_GRID:
            for w in (None, weights) if l2 == 0.1 else (None,):
                body = objective.fit(x, y, HeadSpec(l2=l2), weights=w)
                weight, bias = regression_objective.ridge(x.double(), y.double(), l2, None if w is None else
                                                          w.double())
                assert torch.allclose(body.weight.reshape(-1).double(), weight, atol=1e-4)
                assert float(body.bias) == pytest.approx(float(bias), abs=1e-4)
    finally:
        regression_objective.Gram.__init__ = original
    assert len(made) == 3  # unweighted, then the weighted fit, then unweighted again: never once per penalty


def test_predictions_stay_within_the_training_targets_range():
    """A ridge head extrapolates linearly; the objective (and so the search's scores and the saved run's answers)
    keeps its predictions between the smallest and largest training target, and inside that range changes nothing."""
    from core.engine.classify.fitting import HeadSpec
    from core.engine.regression.objective import Regression
    from core.models.regressors import within_range

    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0] * 8)
    objective = Regression.of(values)
    assert (objective.low, objective.high) == (1.0, 5.0)
    assert objective.to_dict()["min"] == 1.0 and objective.to_dict()["max"] == 5.0
    head = objective.fit(torch.tensor(values[:, None], dtype=torch.float32), objective.targets(values),
                         HeadSpec(l2=1e-6))
    asked = torch.tensor([[-3.0], [2.5], [4.0], [9.0]])
    raw = head(asked).reshape(-1).detach().numpy()
    assert raw[0] < 0 and raw[-1] > 8  # the head itself goes on past the data
    assert objective.predict(head, asked) == pytest.approx([1.0, 2.5, 4.0, 5.0], abs=1e-3)
    assert within_range(np.array([-1.0, 7.0]), None, 6.0).tolist() == [-1.0, 6.0]
    assert within_range(np.array([-1.0, 7.0]), None, None).tolist() == [-1.0, 7.0]


def test_the_penalty_rule_compares_absolute_errors_row_by_row():
    """Rows of very different difficulty make the unpaired standard error of a MAE wide; a stronger penalty that
    errs more on every row is still worse, and the paired rule keeps the best penalty; a penalty whose errors differ
    from the best's only by noise is preferred, being the stronger."""
    from core.engine.classify.search import Candidate
    from core.engine.regression.objective import Regression

    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, 400)
    hardness = 0.1 + rng.exponential(1.0, 400)  # the rows' own difficulty, shared by every penalty
    signs = rng.choice([-1.0, 1.0], 400)

    def candidate(l2: float, extra: np.ndarray) -> Candidate:
        predicted = truth + signs * (hardness + extra)
        errors = np.abs(predicted - truth)
        c = Candidate(f"ridge {l2}", "head", settings={"l2": l2}, cv_mae=float(errors.mean()),
                      cv_rmse=float(np.sqrt((errors ** 2).mean())))
        c._oof = (truth, predicted)
        return c

    best = candidate(0.001, np.zeros(400))
    worse = candidate(0.01, np.full(400, 0.03))  # 0.03 worse on every row: well within the unpaired error
    assert worse.cv_mae - best.cv_mae < np.sqrt(best.cv_rmse ** 2 - best.cv_mae ** 2) / np.sqrt(400)
    assert Regression(0.0, 1.0).choose_penalty([best, worse], 400) is best
    noisy = candidate(0.003, rng.permutation(np.repeat([0.05, -0.05], 200)))  # as good, row errors differ
    assert Regression(0.0, 1.0).choose_penalty([best, worse, noisy], 400) is noisy

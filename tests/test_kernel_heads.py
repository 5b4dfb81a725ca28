"""Kernel heads: an RBF map to the training rows followed by a linear layer (logistic regression for classes, ridge
for numbers), the kind of model an RBF SVM is, as a candidate of the automatic search; saved and loaded like any
feature head."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core import saved
from core.engine.classify import auto
from core.engine.classify.fitting import HeadSpec, body_probs, fit_body
from core.engine.regression.objective import Regression
from core.inference.regress import Regressor
from core.models.heads import WHOLE_BLOCK, FeatureHead, RBFMap, kernel_rows
from tests.test_classify_support import make_context, run_recipe
from tests.test_regression_engine import AUTO, text_data


def rings(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Two classes on concentric rings: no line separates them."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    label = rng.integers(0, 2, n)
    radius = np.where(label == 1, 2.0, 1.0) + rng.normal(0, 0.1, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return torch.tensor(points, dtype=torch.float32), label


def test_the_rbf_map_is_the_gaussian_kernel_with_a_width_relative_to_the_rows_spread():
    x = torch.randn(30, 5)
    rbf = RBFMap.on(x, 1.0)
    distances = torch.cdist(x, x) ** 2
    mean_pair = float(distances.sum() / (30 * 30))  # E|a - b|² over ordered pairs, self-pairs included
    assert float(rbf.gamma) == pytest.approx(1.0 / mean_pair, rel=1e-4)
    y = torch.randn(7, 5)
    assert torch.allclose(rbf(y), torch.exp(-rbf.gamma * torch.cdist(y, x) ** 2), atol=1e-5)
    assert float(RBFMap.on(x * 10, 1.0).gamma) == pytest.approx(float(rbf.gamma) / 100, rel=1e-4)


def test_a_kernel_classifier_separates_rings_where_logistic_regression_cannot():
    x, y = rings(200, 0)
    x_test, y_test = rings(200, 1)
    labels = torch.as_tensor(y)
    linear = fit_body(x, labels, 2, HeadSpec(l2=1e-3))
    kernel = fit_body(x, labels, 2, HeadSpec(l2=1e-3, kernel_width=1.0))
    accuracy = {name: float((body_probs(body, x_test).argmax(1) == y_test).mean())
                for name, body in (("linear", linear), ("kernel", kernel))}
    assert accuracy["linear"] < 0.7 and accuracy["kernel"] > 0.95, accuracy
    assert kernel_rows(kernel) == 200 and kernel_rows(linear) == 0


def test_kernel_ridge_fits_a_curve_a_linear_ridge_cannot_in_the_targets_units():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (150, 1))
    values = 50.0 + 20.0 * np.sin(2 * x[:, 0])
    objective = Regression.of(values)
    features, targets = torch.tensor(x, dtype=torch.float32), objective.targets(values)
    grid = np.linspace(-2.5, 2.5, 50)[:, None]
    truth = 50.0 + 20.0 * np.sin(2 * grid[:, 0])
    errors = {}
    for name, spec in (("linear", HeadSpec(l2=1e-3)), ("kernel", HeadSpec(l2=1e-4, kernel_width=2.0))):
        head = objective.fit(features, targets, spec)
        errors[name] = float(np.abs(objective.predict(head, torch.tensor(grid, dtype=torch.float32)) - truth).mean())
    assert errors["linear"] > 10 and errors["kernel"] < 1.0, errors


def test_a_kernel_feature_head_saves_and_loads_with_the_same_outputs(tmp_path):
    x, y = rings(80, 2)
    head = FeatureHead([2], 2)
    head.set_scale(x, [True])
    head.body = fit_body(head.prepare(x), torch.as_tensor(y), 2, HeadSpec(l2=1e-3, kernel_width=0.5))
    saved.save_feature_head(tmp_path, head, {"num_labels": 2, "inputs": []})
    config = json.loads((tmp_path / saved.HEAD_CONFIG).read_text())
    assert config["kernel_rows"] == 80 and config["hidden"] == 0
    loaded, _ = saved.load_head(tmp_path)
    probe = torch.randn(9, 2)
    assert torch.allclose(loaded(probe), head.eval()(probe), atol=1e-6)


def test_the_search_scores_kernel_heads_and_a_kernel_winner_reloads_for_prediction(home, bert_dir, monkeypatch):
    original = auto.AutoRecipe._head_better

    def kernel_first(self, a, b):  # let a kernel head win, to check it is retrained, saved and loaded
        if b is not None and ("kernel" in a.name) != ("kernel" in b.name):
            return "kernel" in a.name
        return original(self, a, b)

    monkeypatch.setattr(auto.AutoRecipe, "_head_better", kernel_first)
    ctx = make_context(home, str(bert_dir), "text-regression", "auto", text_data(), **AUTO, max_minutes=0.5)
    _, report = run_recipe(ctx)
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    kernels = [c for c in board["candidates"] if "RBF kernel" in c["name"]]
    assert len(kernels) == 2 and all(c["status"] == "scored" for c in kernels), kernels
    assert all(c["settings"]["kernel_width"] in auto.KERNEL_WIDTHS and "among widths" in c["note"] for c in kernels)
    assert any(c["name"] == "RBF kernel ridge regression on TF-IDF" for c in kernels)
    assert "RBF kernel" in board["winner"] and report["search"]["winner"] == board["winner"]
    config = json.loads((ctx.run.model / saved.HEAD_CONFIG).read_text())
    assert config["kernel_rows"] == len(ctx.data.train)
    regressor = Regressor.from_run(ctx.run.path, home)
    texts = ctx.data.validation["text"]
    assert np.allclose(regressor.predict_batch(texts), report["points"]["predicted"], atol=1e-3)


def test_a_whole_block_is_centred_by_column_and_scaled_by_one_number():
    x = torch.rand(40, 6) * torch.tensor([0.01, 1, 1, 2, 2, 0.0])  # a near-constant and a constant column
    head = FeatureHead([2, 4], 2)
    head.set_scale(x, [True, WHOLE_BLOCK])
    prepared = head.prepare(x)
    assert torch.allclose(prepared.mean(0), torch.zeros(6), atol=1e-5)
    whole = prepared[:, 2:]
    assert float(whole.pow(2).sum(1).mean()) == pytest.approx(1.0, rel=1e-4)  # unit mean square norm
    ratio = whole[:, 1:3].std(0) / (x[:, 3:5] - x[:, 3:5].mean(0)).std(0)
    assert torch.allclose(ratio, ratio[0].expand(2), rtol=1e-4)  # one scale: the columns' contrast is kept
    assert float(prepared[:, 0].std()) == pytest.approx(float(prepared[:, 1].std()), rel=1e-3)  # z-scored block

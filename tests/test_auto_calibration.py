"""The automatic search's head choice: calibrated out-of-fold log-loss, the paired one-standard-error penalty rule,
the winner's temperature, the MLP's time guard and the order of the views."""
import json

import numpy as np
import pytest
import torch

from core.engine.classify import auto
from core.engine.classify.fitting import apply_temperature, fit_temperature, row_log_losses
from core.engine.classify.objective import Classification
from core.engine.classify.search import Candidate
from tests.test_auto import AUTO
from tests.test_classify_support import make_context, run_recipe, text_data


def _probs(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_temperature_recovers_a_known_scale_and_changes_no_prediction():
    rng = np.random.default_rng(0)
    true_logits = 2.0 * rng.normal(size=(4000, 4))
    p = _probs(true_logits)
    labels = np.array([rng.choice(4, p=row) for row in p])  # drawn from them: calibrated at temperature 1
    timid = _probs(true_logits / 4.0)  # a strong penalty: the same ranking, probabilities four times too flat
    t = fit_temperature(timid, labels)
    assert t == pytest.approx(0.25, rel=0.1)
    assert row_log_losses(timid, labels, t).mean() < row_log_losses(timid, labels).mean() - 0.1
    body = torch.nn.Linear(3, 4)
    x = torch.randn(5, 3)
    before = body(x).detach()
    apply_temperature(body, 0.5)
    assert torch.allclose(body(x), before / 0.5, atol=1e-5)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.GELU(), torch.nn.Linear(8, 4)).eval()
    before = mlp(x).detach()
    apply_temperature(mlp, 2.0)
    assert torch.allclose(mlp(x), before / 2.0, atol=1e-5)


def _candidate(l2: float, probs: np.ndarray, labels: np.ndarray) -> Candidate:
    t = fit_temperature(probs, labels)
    c = Candidate(f"l2 {l2}", "head", {"l2": l2}, cv_accuracy=float((probs.argmax(1) == labels).mean()),
                  cv_calibrated_log_loss=float(row_log_losses(probs, labels, t).mean()), temperature=t)
    c._oof = (labels, probs)
    return c


def test_penalty_is_the_strongest_not_worse_than_the_best_by_a_paired_standard_error():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 400)
    signal = rng.normal(size=(400, 3)) + 2.0 * np.eye(3)[labels]
    good = _candidate(1e-3, _probs(signal), labels)
    same = _candidate(1e-2, _probs(signal * 0.3), labels)  # the same ranking, timid: calibration makes it equal
    noisy = _candidate(1e-1, _probs(signal + rng.normal(scale=3.0, size=signal.shape)), labels)  # worse ranking
    objective = Classification(["a", "b", "c"])
    assert objective.choose_penalty([good, same, noisy], 400) is same
    assert objective.choose_penalty([good, noisy], 400) is good
    assert objective.head_better(good, noisy) and not objective.head_better(noisy, good)
    for c in (good, same, noisy):  # without out-of-fold probabilities: one standard error on accuracy
        c._oof = None
    assert objective.choose_penalty([good, same, noisy], 400) is same


def _head(name: str, probs: np.ndarray, labels: np.ndarray, **settings) -> Candidate:
    c = _candidate(1e-3, probs, labels)
    c.name, c.settings = name, {"l2": 1e-3, "hidden": 0, **settings}
    return c


def test_a_simpler_head_within_the_noise_of_the_best_is_kept():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 400)
    signal = rng.normal(size=(400, 3)) + 2.0 * np.eye(3)[labels]
    kernel = _head("RBF kernel", _probs(signal), labels, kernel_width=1.0)
    # a little noise on the same signal: worse, by less than the noise of the row-by-row difference
    close = signal + np.random.default_rng(5).normal(scale=0.2, size=signal.shape)
    linear = _head("Logistic regression", _probs(close), labels)
    mlp = _head("MLP", _probs(close), labels, hidden=256)
    far = _head("Logistic regression on less", _probs(signal + rng.normal(scale=3.0, size=signal.shape)), labels)
    objective = Classification(["a", "b", "c"])
    assert kernel.cv_calibrated_log_loss < linear.cv_calibrated_log_loss
    chosen, why = objective.choose_head([kernel, mlp, linear, far], kernel)
    assert chosen is linear and "within one paired standard error" in why and "RBF kernel" in why
    assert objective.choose_head([kernel, mlp], kernel)[0] is mlp  # an MLP is simpler than a kernel head
    assert objective.choose_head([kernel, far], kernel) == (kernel, "")  # the linear head is far behind: no
    far.settings["hidden"] = 0
    assert objective.choose_head([far, kernel], kernel)[0] is kernel


def test_the_winner_is_calibrated_and_a_costly_mlp_is_skipped(home, bert_dir, monkeypatch):
    monkeypatch.setattr(auto, "MLP_SHARE", 0.0)  # whatever it costs, it is too much
    ctx = make_context(home, str(bert_dir), "text-classification", "auto", text_data(), **AUTO, max_minutes=1)
    _, report = run_recipe(ctx)
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    heads = [c for c in board["candidates"] if c["kind"] == "head" and c["status"] == "scored"]
    assert heads and all(c["temperature"] > 0 and c["cv_calibrated_log_loss"] <= c["cv_log_loss"] + 1e-6
                         for c in heads)
    mlp = [c for c in board["candidates"] if c["name"].startswith("MLP")]
    assert mlp and mlp[0]["status"] == "skipped" and "it would take about" in mlp[0]["note"]
    winner = next(c for c in heads if c["name"] == board["winner"])
    config = json.loads((ctx.run.model / "head_config.json").read_text())
    assert config["temperature"] == pytest.approx(winner["temperature"], rel=1e-3)
    assert "log-loss" in board["why"]
    tried = [e["name"] for e in ctx.reporter.sinks[0].of_type("candidate") if e["kind"] == "head"]
    assert "+ TF-IDF" in tried[0]  # the network's features next to the classical ones come first

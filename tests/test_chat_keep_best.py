"""Early stopping on the validation loss and keeping the best weights (chat recipe, ``KeepBest``)."""
from __future__ import annotations

import torch
from transformers import TrainerControl, TrainerState

from core.engine.chat.recipe import KeepBest
from tests.test_chat_recipe import _train


def _model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    model[0].requires_grad_(False)
    return model


def _evaluate(callback, model, step, loss, value):
    with torch.no_grad():
        model[1].weight.fill_(value)
    state, control = TrainerState(), TrainerControl()
    state.global_step = step
    callback.on_evaluate(None, state, control, metrics={"eval_loss": loss})
    return control


def test_stops_after_patience_rises_and_restores_the_best_weights():
    model = _model()
    keep = KeepBest(model, patience=2)
    assert not _evaluate(keep, model, 5, 2.0, 1.0).should_training_stop
    assert not _evaluate(keep, model, 10, 1.5, 2.0).should_training_stop  # best: weights 2.0
    assert not _evaluate(keep, model, 15, 1.6, 3.0).should_training_stop
    assert _evaluate(keep, model, 20, 1.7, 4.0).should_training_stop
    assert keep.stopped_at == 20 and keep.best_step == 10
    assert keep.restore()
    assert torch.all(model[1].weight == 2.0)
    assert "step 10" in keep.summary() and "stopped early at step 20" in keep.summary()


def test_keeps_the_last_weights_when_the_last_evaluation_was_the_best():
    model = _model()
    keep = KeepBest(model, patience=2)
    _evaluate(keep, model, 5, 2.0, 1.0)
    _evaluate(keep, model, 10, 1.8, 2.0)
    with torch.no_grad():
        model[1].weight.fill_(2.5)  # steps after the last evaluation
    assert not keep.restore()
    assert torch.all(model[1].weight == 2.5)


def test_frozen_weights_are_not_snapshotted_and_a_big_model_only_stops():
    model = _model()
    keep = KeepBest(model, patience=1)
    _evaluate(keep, model, 5, 1.0, 1.0)
    assert set(keep._state) == {"1.weight", "1.bias"}
    big = KeepBest(_model(), patience=1, max_elements=1)
    _evaluate(big, big.model, 5, 1.0, 1.0)
    assert _evaluate(big, big.model, 10, 2.0, 2.0).should_training_stop
    assert not big.restore()  # nothing kept: the weights stay the last ones


def test_a_chat_run_that_overfits_stops_early_and_keeps_its_best_step(tmp_path):
    # a learning rate far too high on the tiny model: the validation loss turns up within a few evaluations
    ctx, sink, recipe, outcome = _train(tmp_path, "lora", learning_rate=0.3, epochs=6.0, eval_every=2)
    evals = [e["eval_loss"] for e in sink.of_type("eval") if "eval_loss" in e]
    assert outcome.extra["best_step"] is not None and outcome.extra["best_eval_loss"] == round(min(evals), 4)
    if outcome.extra["early_stopped_at"] is not None:
        assert outcome.global_step == outcome.extra["early_stopped_at"] < recipe.trainer.state.max_steps
    assert any("Validation loss was lowest" in line.get("message", "") for line in sink.of_type("log"))

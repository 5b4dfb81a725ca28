"""A labelled file scored after training is set beside the run's validation figure (core/engine/holds_up.py)."""
from __future__ import annotations

import json

import pytest

from core.engine.holds_up import against_validation


def _eval(tmp_path, tuned: dict, examples: int):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"tuned": tuned, "examples": examples, "split": "validation"}))
    return path


def test_a_file_far_below_the_validation_figure_is_called_out(tmp_path):
    # the icons run: 70.0 % on 60 validation icons split off the upload, 47.3 % on 182 icons of new families
    checked = against_validation(_eval(tmp_path, {"accuracy": 0.70}, 60), {"accuracy": 0.473, "examples": 182},
                                 tmp_path / "icons-test.zip")
    assert checked["lower"] and checked["gap"] == pytest.approx(0.227)
    assert 0.12 < checked["noise"] < 0.16  # two standard errors of the difference of two proportions
    said = checked["message"]
    assert said.startswith("On icons-test.zip the tuned model scored 47.3%, against 70.0% on its validation rows")
    assert "worse by 22.7 points" in said and "data.validation_path" in said


def test_a_gap_within_chance_holds_up(tmp_path):
    checked = against_validation(_eval(tmp_path, {"accuracy": 0.70}, 60), {"accuracy": 0.64, "examples": 182},
                                 tmp_path / "new.csv")
    assert not checked["lower"] and checked["message"].startswith("This holds up the figure on the validation rows")
    run = _eval(tmp_path, {"accuracy": 0.70}, 60)
    better = against_validation(run, {"accuracy": 0.95, "examples": 500}, tmp_path / "x")
    assert not better["lower"] and "easier than the validation rows" in better["message"]  # not a warning
    run = _eval(tmp_path, {"accuracy": 1.0}, 40)
    perfect = against_validation(run, {"accuracy": 1.0, "examples": 40}, tmp_path / "x")
    assert perfect["noise"] > 0 and not perfect["lower"]  # 100 % on both sides still has a finite noise


def test_regressors_compare_mean_absolute_errors(tmp_path):
    run = _eval(tmp_path, {"mae": 0.50, "rmse": 0.65, "r2": 0.3}, 160)
    worse = against_validation(run, {"mae": 0.80, "rmse": 1.0, "examples": 300}, tmp_path / "prices.csv")
    assert worse["lower"] and "mean absolute error of 0.8," in worse["message"]
    assert not against_validation(run, {"mae": 0.52, "rmse": 0.66, "examples": 300}, tmp_path / "prices.csv")["lower"]


def test_the_runs_own_validation_file_scored_again_says_nothing(tmp_path):
    run = _eval(tmp_path, {"accuracy": 0.538}, 182)
    held = tmp_path / "held.zip"
    held.write_bytes(b"the same bytes")
    copy = tmp_path / "uploads" / "held.zip"  # the page's own copy of the same upload
    copy.parent.mkdir()
    copy.write_bytes(b"the same bytes")
    scored = {"accuracy": 0.538, "examples": 182}
    assert against_validation(run, scored, held, str(held)) is None
    assert against_validation(run, scored, copy, str(held)) is None
    other = tmp_path / "other.zip"
    other.write_bytes(b"other bytes!!!")
    assert against_validation(run, scored, other, str(held)) is not None


def test_nothing_is_said_without_two_comparable_figures(tmp_path):
    assert against_validation(tmp_path / "missing.json", {"accuracy": 0.5, "examples": 10}, tmp_path / "x") is None
    chat = _eval(tmp_path, {"eval_loss": 2.7}, 80)
    assert against_validation(chat, {"eval_loss": 2.9, "examples": 80}, tmp_path / "x") is None
    run = _eval(tmp_path, {"accuracy": 0.7}, 60)
    assert against_validation(run, {"accuracy": 0.5, "examples": 0}, tmp_path / "x") is None


def test_grouped_validation_rows_widen_what_chance_moves(tmp_path):
    # the grouped icons run: 36.7 % on 60 validation icons from 36 family subfolders, 50.0 % on 182 new icons
    plain = against_validation(_eval(tmp_path, {"accuracy": 0.367}, 60), {"accuracy": 0.50, "examples": 182},
                               tmp_path / "test")
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"tuned": {"accuracy": 0.367}, "examples": 60, "grouped": {"groups": 36, "se": 0.11}}))
    grouped = against_validation(path, {"accuracy": 0.50, "examples": 182}, tmp_path / "test")
    assert grouped["noise"] > plain["noise"] and grouped["noise"] == pytest.approx(
        2 * (0.11 ** 2 + 0.5 * 0.5 / 182) ** 0.5, rel=0.02)
    smaller = tmp_path / "small.json"  # a grouped error below the rows' own never narrows the noise
    smaller.write_text(json.dumps({"tuned": {"accuracy": 0.367}, "examples": 60, "grouped": {"se": 0.001}}))
    assert against_validation(smaller, {"accuracy": 0.50, "examples": 182}, tmp_path / "t")["noise"] == \
        pytest.approx(plain["noise"])

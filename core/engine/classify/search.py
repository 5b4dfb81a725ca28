"""The automatic search's bookkeeping: its time budget, the candidates it tried and the leaderboard it keeps.

The leaderboard is what the user reads to trust the choice: every candidate with its cross-validated score on the
training rows, its time, and for candidates that were not run, why not. It goes to ``leaderboard.json`` in the
run folder and into eval.json.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...data.groups import each

LEADERBOARD_FILE = "leaderboard.json"

class Clock:
    """Seconds used and left of a budget that started at construction."""

    def __init__(self, budget_s: float) -> None:
        self.budget = float(budget_s)
        self.started = time.perf_counter()

    @property
    def used(self) -> float:
        return time.perf_counter() - self.started

    @property
    def left(self) -> float:
        return self.budget - self.used

    def deadline(self) -> float:
        """The ``time.perf_counter()`` value at which the budget runs out."""
        return self.started + self.budget


@dataclass
class Candidate:
    """One thing the search tried (or chose not to try).

    Args:
        name: what the leaderboard shows, e.g. "Logistic regression on block8 + pixels".
        kind: "head" (on cached features) or "fine-tune".
        settings: what defines it (features, penalty, learning rate...).
        status: "scored", "skipped" (not run: see note), "stopped" (the budget ran out mid-way).
        cv_accuracy: accuracy of out-of-fold predictions over all training rows (heads).
        holdout_accuracy: accuracy on the first fold's held-out rows (every scored candidate: the common ground
            on which heads and fine-tunes are compared).
        cv_macro_f1: macro-F1 of the out-of-fold predictions.
        cv_log_loss: mean cross-entropy of the out-of-fold probabilities.
        cv_calibrated_log_loss: the same after dividing the log-probabilities by ``temperature``, the one that
            minimises it (chooses a head's penalty and features; the saved head is calibrated by it).
        temperature: that temperature.
        cv_mae, cv_rmse, cv_r2: regression: mean absolute error, root mean square error and R² of the out-of-fold
            predictions over all training rows (heads).
        holdout_mae: regression: mean absolute error on the first fold's held-out rows (every scored candidate).
        seconds: time spent on it.
        note: why it was skipped or stopped, or what was learnt (best epoch...).
    """

    name: str
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    status: str = "scored"
    cv_accuracy: float | None = None
    holdout_accuracy: float | None = None
    cv_macro_f1: float | None = None
    cv_log_loss: float | None = None
    cv_calibrated_log_loss: float | None = None
    temperature: float | None = None
    cv_mae: float | None = None
    cv_rmse: float | None = None
    cv_r2: float | None = None
    holdout_mae: float | None = None
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("cv_accuracy", "holdout_accuracy", "cv_macro_f1", "cv_log_loss", "cv_calibrated_log_loss",
                    "temperature", "cv_mae", "cv_rmse", "cv_r2",
                    "holdout_mae"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None
        return out


@dataclass
class Leaderboard:
    """Every candidate, the winner and why; ``to_dict`` is what leaderboard.json and eval.json hold."""

    budget_s: float
    folds: int
    rows: int
    candidates: list[Candidate] = field(default_factory=list)
    winner: str | None = None
    why: str = ""
    used_s: float = 0.0
    retrained_on_all_rows: bool = True
    final_rows: int | None = None  # the saved head was fitted again on this many rows (training + validation)
    metric: str = "accuracy"  # the candidates' cv_/holdout_ score that ranks them
    higher_is_better: bool = True
    grouped_by: str | None = None  # the data's group column: each group lay in one fold

    def add(self, candidate: Candidate) -> Candidate:
        self.candidates.append(candidate)
        return candidate

    def scored(self, kind: str | None = None) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "scored" and (kind is None or c.kind == kind)]

    def to_dict(self) -> dict[str, Any]:
        # best first; ties keep the order they were tried in (cheaper first), so a seed gives one ranking
        ranked = [c for _, c in sorted(enumerate(self.candidates),
                                       key=lambda pair: (self._rank_key(pair[1]), pair[0]))]
        return {
            "metric": f"{METRIC_WORDS.get(self.metric, self.metric)} over {self.folds}-fold cross-validation on the "
                      f"{self.rows} training rows" + (f", {each(self.grouped_by)} in one fold" if self.grouped_by
                                                      else "") + " (the validation split is kept for the report)",
            "budget_s": round(self.budget_s, 1), "used_s": round(self.used_s, 1), "winner": self.winner,
            "why": self.why, "retrained_on_all_rows": self.retrained_on_all_rows,
            "rows": self.rows, "final_rows": self.final_rows,
            "score": self.metric, "higher_is_better": self.higher_is_better,  # cv_<score>, holdout_<score>
            "candidates": [c.to_dict() for c in ranked],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    def _rank_key(self, candidate: Candidate) -> tuple:
        scored = candidate.status == "scored"
        cv, held = getattr(candidate, f"cv_{self.metric}"), getattr(candidate, f"holdout_{self.metric}")
        score = cv if cv is not None else held
        if score is None:
            return (not scored, float("inf"))
        return (not scored, -score if self.higher_is_better else score)


METRIC_WORDS = {"accuracy": "accuracy", "mae": "mean absolute error (lower is better)"}


def read_leaderboard(run_path: Path) -> dict | None:
    """The run's leaderboard.json, or None when the run did not search."""
    path = Path(run_path) / LEADERBOARD_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))

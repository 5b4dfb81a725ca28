"""``strategy: auto`` for regression: the classifiers' automatic search (``core.engine.classify.auto``) with the
regression objective: ridge regression (its penalty by cross-validation) and an MLP on the cached frozen features
at the best taps, next to TF-IDF or raw pixels, then LoRA and full fine-tunes on standardised targets when the
budget leaves time, ranked by mean absolute error over cross-validation on the training rows.

Ridge regression is fitted in closed form: scoring one view of the features with every penalty takes a fraction
of a second once the features are cached, so every view is scored even when computing the features has used the
budget (on a busy CPU the frozen features alone can take longer than the whole budget, and the search then kept
the first view and skipped TF-IDF or raw pixels: measured on Debian package sizes, issue 18). A view that turns
out slow (over ``CLOSED_FORM_S`` seconds and ``CLOSED_FORM_SHARE`` of the budget) puts the budget's rule back; the MLP and the fine-tunes always keep
to it.

Image augmentation is left out (a shifted or zoomed picture may lose what is counted or measured).
"""
from __future__ import annotations

import time

from ..classify.auto import AutoRecipe
from .base import RegressionBase

# a ridge view slower than both of these no longer ignores a spent budget
CLOSED_FORM_S = 5.0
CLOSED_FORM_SHARE = 0.05


class _ClosedFormClock:
    """The search's clock as the ridge views see it: never spent while the views stay cheap."""

    def __init__(self, clock, cheap) -> None:
        self.real, self.cheap = clock, cheap

    @property
    def budget(self) -> float:
        return self.real.budget

    @property
    def used(self) -> float:
        return self.real.used

    @property
    def left(self) -> float:
        return self.real.budget if self.cheap() else self.real.left


class RegressionAutoRecipe(RegressionBase, AutoRecipe):
    """The automatic search, scored by mean absolute error; the winner saved with target.json and a base head."""

    def _search_heads(self, folds, y_train: list):
        real = self.clock
        self._slowest_view = 0.0
        self.clock = _ClosedFormClock(real, lambda: self._slowest_view <= max(CLOSED_FORM_S, real.budget * CLOSED_FORM_SHARE))
        try:
            return super()._search_heads(folds, y_train)
        finally:
            self.clock = real

    def _score_view(self, view, specs, folds, y_train: list):
        started = time.perf_counter()
        try:
            return super()._score_view(view, specs, folds, y_train)
        finally:
            self._slowest_view = max(getattr(self, "_slowest_view", 0.0), time.perf_counter() - started)

    def _refinements(self, best, folds, y_train: list):
        """The MLP (not closed form) keeps to the real budget."""
        self.clock = getattr(self.clock, "real", self.clock)
        yield from super()._refinements(best, folds, y_train)

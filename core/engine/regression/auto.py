"""``strategy: auto`` for regression: the classifiers' automatic search (``core.engine.classify.auto``) with the
regression objective: ridge regression (its penalty by cross-validation) and an MLP on the cached frozen features
at the best taps, next to TF-IDF or raw pixels, then LoRA and full fine-tunes on standardised targets when the
budget leaves time, ranked by mean absolute error over cross-validation on the training rows.

Image augmentation is left out (a shifted or zoomed picture may lose what is counted or measured).
"""
from __future__ import annotations

from ..classify.auto import AutoRecipe
from .base import RegressionBase


class RegressionAutoRecipe(RegressionBase, AutoRecipe):
    """The automatic search, scored by mean absolute error; the winner saved with target.json and a base head."""

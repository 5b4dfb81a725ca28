"""The honest "before" for a regressor, measured on the same validation split as the tuned model.

- mean: always the training targets' mean (what an R² of 0 means; anything useful beats it);
- base: a ridge head on the base model's frozen features. A model that was never trained for this target cannot
  output a number at all, so this is the least training that makes it answer; it says how much the untouched
  model's features already know;
- classical: ridge regression on TF-IDF (texts) or raw pixels (images), no neural network, its penalty chosen by
  cross-validation on the training rows.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ...models.classical import TfidfFeatures
from ..classify.baselines import PIXEL_SIZE, Baseline, image_pixels, keep_tip, paired_noise

ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def mean(train_values: Sequence[float], n: int) -> np.ndarray:
    """(n,) copies of the training targets' mean."""
    return np.full(n, float(np.mean(train_values)))


def tfidf_ridge(train_texts: Sequence[str], train_values: Sequence[float], texts: Sequence[str]) -> np.ndarray:
    """Predictions of ridge regression on TF-IDF (words, word pairs and character n-grams: ``TfidfFeatures``)
    fitted on the training split.

    Args:
        train_texts, train_values: the training split.
        texts: the texts to predict (the validation split).
    """
    from sklearn.linear_model import RidgeCV

    features = TfidfFeatures()
    model = RidgeCV(alphas=ALPHAS).fit(features.fit_sparse(train_texts), np.asarray(train_values, dtype=np.float64))
    return model.predict(features.sparse(texts))


def pixel_ridge(train_pixels: np.ndarray, train_values: Sequence[float], pixels: np.ndarray) -> np.ndarray:
    """Predictions of ridge regression on standardised raw pixels (see ``image_pixels``)."""
    from sklearn.linear_model import RidgeCV

    centre, spread = train_pixels.mean(axis=0), train_pixels.std(axis=0) + 1e-3
    model = RidgeCV(alphas=ALPHAS).fit((train_pixels - centre) / spread, np.asarray(train_values, dtype=np.float64))
    return model.predict((pixels - centre) / spread)


def classical(image: bool, train_items: Sequence, train_values: Sequence[float], items: Sequence,
              open_image: Callable) -> tuple[str, np.ndarray, str, str]:
    """(key, predictions, title, description) of the classical baseline for texts or images."""
    if not image:
        return ("tfidf_ridge", tfidf_ridge(train_items, train_values, items), "TF-IDF + ridge regression",
                "Word and word-pair counts, no neural network.")
    predictions = pixel_ridge(image_pixels(train_items, open_image), train_values, image_pixels(items, open_image))
    return ("pixel_ridge", predictions, "Raw-pixel ridge regression",
            f"Ridge regression on the {PIXEL_SIZE}x{PIXEL_SIZE} pixels, no neural network.")


def verdict(tuned: dict[str, float], tuned_rows: np.ndarray, baselines: dict[str, Baseline],
            where: str = "on the validation split", groups: Sequence[str] | None = None) -> dict:
    """Whether the tuned model's mean absolute error beats every baseline on the report's rows, in plain words, and
    what to try when it does not (the page shows ``message`` and ``try`` as they are). A gap within what chance
    moves on these rows (``paired_noise`` of the row-by-row errors) is said to be one, either way.

    Args:
        tuned: the tuned model's scores (``mae``...).
        tuned_rows: minus its absolute error on every row (``metrics.error_rows``).
        baselines: key -> ``Baseline``.
        where: where the rows are, in words ("on the validation split", "on test.csv").
        groups: the rows' groups, when they have some: chance is measured over groups (``paired_noise``).
    """
    key, best = min(baselines.items(), key=lambda kv: kv[1].scores["mae"])
    title = best.title
    ours, theirs = float(tuned["mae"]), float(best.scores["mae"])
    noise = paired_noise(tuned_rows, best.rows, groups)
    out = {"strongest_baseline": key, "baseline_title": title, "baseline_mae": theirs, "tuned_mae": ours,
           "margin": theirs - ours,
           "noise": noise if np.isfinite(noise) else None}  # None: too few rows to say
    chance = f"±{noise:.3g}" if np.isfinite(noise) else "any gap"
    if ours < theirs:
        close = theirs - ours <= noise
        out.update(status="tuned-wins", within_chance=bool(close), message=(
            f"The tuned model beats every baseline {where}: a mean absolute error of {ours:.4g} against {theirs:.4g} "
            f"for the strongest, {title}." + (f" A margin this small could be chance on these rows ({chance})."
                                              if close else "")))
        return out
    more_rows = ("score more rows with a true value (studio eval RUN --data FILE, or a file of true values in the "
                 "Evaluate tab's \"Predict a whole file\")")
    if ours == theirs:
        out.update(status="tie", message=(
            f"The tuned model and {title} both err by {ours:.4g} on average {where}: fine-tuning has not shown an "
            "advantage on these rows."), **{"try": [more_rows, *keep_tip(key)]})
        return out
    if ours - theirs <= noise:
        out.update(status="tie", message=(
            f"{title} errs by {theirs:.4g} on average {where} and the tuned model by {ours:.4g}: within what chance "
            f"alone moves on these rows ({chance}), so neither is shown to be the better model."),
            **{"try": [more_rows, "more training rows (a few hundred or more)",
                       "the Thorough preset (a longer automatic search, with fine-tunes)"]})
        return out
    out.update(status="baseline-wins", message=(
        f"{title} errs by {theirs:.4g} on average {where} and the tuned model by {ours:.4g}: on this data "
        "fine-tuning has not paid yet, so the simpler baseline is the better model for now."),
        **{"try": ["more training rows (a few hundred or more)", "another base model from the catalog",
                   "the Thorough preset (a longer automatic search, with fine-tunes)", *keep_tip(key)]})
    return out

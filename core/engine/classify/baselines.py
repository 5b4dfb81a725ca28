"""The honest "before": what a classifier gets without fine-tuning, measured on the same validation split.

Three baselines, each a real model fitted on the training split only:

- majority: always the most frequent training class (what accuracy means nothing above);
- base: nearest class centroid on the base model's frozen embeddings (cosine), what the untouched model knows;
- classical: TF-IDF + logistic regression for text, raw-pixel logistic regression for images. On easy data
  (digits) this is hard to beat, and the user should see that.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np

from ...data.groups import mean_se
from ...models.classical import TfidfFeatures
from .metrics import headline

PIXEL_SIZE = 24  # raw-pixel baseline resolution: big enough for digits and icons, small enough to fit fast


class Baseline(NamedTuple):
    """One baseline as the report shows it.

    Attributes:
        scores: its headline scores on the report's rows (``accuracy``... or ``mae``...).
        title: its name, in words.
        description: what it is, in one sentence.
        rows: its row-by-row score on the same rows, higher is better (1 right / 0 wrong, or minus the absolute
            error), for the paired comparison with the tuned model.
    """

    scores: dict
    title: str
    description: str
    rows: np.ndarray


def add_to_report(report: dict, tuned: dict[str, float], described: dict[str, Baseline],
                  compared: tuple[str, ...]) -> None:
    """Each baseline's scores under its key, its title and description under ``baselines``, and the tuned model's
    difference from it on the ``compared`` metrics under ``deltas`` (classifiers and regressors alike)."""
    for key, baseline in described.items():
        report[key] = baseline.scores
    report["baselines"] = [{"key": k, "title": b.title, "description": b.description} for k, b in described.items()]
    report["deltas"] = {k: {m: tuned[m] - b.scores[m] for m in compared} for k, b in described.items()}


def right_rows(probs: np.ndarray, y_true: Sequence[int]) -> np.ndarray:
    """1.0 where the top class of ``probs`` is the true one, else 0.0."""
    return (np.asarray(probs).argmax(axis=1) == np.asarray(y_true)).astype(np.float64)


def rows_in_words(rows: int, groups: Sequence[str] | None = None) -> str:
    """"96 rows", or "95 rows from 36 groups" where the rows' groups set how far chance moves a score."""
    many = len(set(groups)) if groups is not None else rows
    return f"{rows} rows" + (f" from {many} groups" if many < rows else "")


def paired_noise(ours: Sequence[float], theirs: Sequence[float], groups: Sequence[str] | None = None) -> float:
    """How far apart two models scored on the same rows can land by chance alone: two standard errors of their
    row-by-row difference (about 95 %). Paired, so rows both get right or both get wrong cost nothing; on 96 rows
    where two classifiers disagree on a quarter, that is about 10 points of accuracy. With ``groups`` (the
    rows' groups, ``core.data.groups``) the rows of one group count together, and the noise is wider."""
    diff = np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    return 2 * mean_se(diff, groups)


def majority(train_labels: Sequence[int], n_classes: int, n: int) -> np.ndarray:
    """(n, C) one-hot probabilities of the most frequent training class."""
    counts = np.bincount(np.asarray(train_labels), minlength=n_classes)
    probs = np.zeros((n, n_classes), dtype=np.float32)
    probs[:, int(counts.argmax())] = 1.0
    return probs


def tfidf_logreg(train_texts: Sequence[str], train_labels: Sequence[int], texts: Sequence[str],
                 n_classes: int, seed: int = 0) -> np.ndarray:
    """(N, C) probabilities from TF-IDF (words, word pairs and character n-grams: ``TfidfFeatures``, the
    classical features the automatic search reads too) + logistic regression fitted on the training split.

    Args:
        train_texts, train_labels: the training split.
        texts: the texts to score (the validation split).
        n_classes: how many classes.
        seed: the solver's seed.
    """
    from sklearn.linear_model import LogisticRegression

    features = TfidfFeatures()
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(features.fit_sparse(train_texts),
                                                                              train_labels)
    return _full_probs(model, model.predict_proba(features.sparse(texts)), n_classes)


def pixel_logreg(train_pixels: np.ndarray, train_labels: Sequence[int], pixels: np.ndarray, n_classes: int,
                 seed: int = 0) -> np.ndarray:
    """(N, C) probabilities from logistic regression on standardised raw pixels (see ``image_pixels``)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = train_pixels.mean(axis=0), train_pixels.std(axis=0) + 1e-3
    # tol 1e-3 converges in ~20 iterations here; sklearn's 1e-4 took 8 s on 400 digits for the same accuracy
    model = LogisticRegression(C=0.1, max_iter=300, tol=1e-3, random_state=seed)
    model.fit((train_pixels - mean) / std, train_labels)
    return _full_probs(model, model.predict_proba((pixels - mean) / std), n_classes)


def image_pixels(paths: Sequence[str], open_image: Callable, size: int = PIXEL_SIZE) -> np.ndarray:
    """(N, size*size*3) float32 pixels in [0, 1] of the images at ``paths``, squashed to ``size`` x ``size``."""
    rows = []
    for path in paths:
        image = open_image(path).resize((size, size))
        rows.append(np.asarray(image, dtype=np.float32).reshape(-1) / 255.0)
    return np.stack(rows)


def keep_tip(key: str) -> list[str]:
    """How to keep a model like the baseline ``key`` (``tfidf_logreg``, ``pixel_ridge``, ``base``...) in the
    studio, as a tip; none for always answering the same. The automatic search has the classical features alone
    among its candidates, and Head only is a head on the untouched model's features."""
    words = "raw pixels" if key.startswith("pixel") else "TF-IDF"
    if key == "base":
        return ["or keep the untouched model with a small head on its features: the Head only strategy"]
    if key.startswith(("tfidf", "pixel")):
        return [f"or keep a model without a neural network: the Automatic strategy tries {words} alone among its "
                "candidates, and keeps it when it scores best in cross-validation"]
    return []


def verdict(tuned: dict[str, float], tuned_rows: np.ndarray, baselines: dict[str, Baseline],
            where: str = "on the validation split", groups: Sequence[str] | None = None) -> dict:
    """Whether the tuned model beats every baseline on the report's rows, in plain words, and what to try when it
    does not (the page shows ``message`` and ``try`` as they are). A gap within what chance moves on these rows
    (``paired_noise``) is said to be one, either way: a baseline ahead by three rows of 96 is not shown to be
    better, and the page must not tell the user to keep it.

    Args:
        tuned: the tuned model's scores (``accuracy``...).
        tuned_rows: its row-by-row correctness on the same rows (``right_rows``).
        baselines: key -> ``Baseline``, as ``BaseRecipe.baselines`` gives.
        where: where the rows are, in words ("on the validation split", "on test.csv").
        groups: the rows' groups, when they have some: chance is measured over groups (``paired_noise``).
    """
    key, best = max(baselines.items(), key=lambda kv: kv[1].scores["accuracy"])
    title = best.title
    ours, theirs = float(tuned["accuracy"]), float(best.scores["accuracy"])
    examples = rows_in_words(len(tuned_rows), groups)
    noise = paired_noise(tuned_rows, best.rows, groups)
    out = {"strongest_baseline": key, "baseline_title": title, "baseline_accuracy": theirs,
           "tuned_accuracy": ours, "margin": ours - theirs,
           "noise": noise if np.isfinite(noise) else None}  # None: too few rows to say
    chance = f"±{noise:.1%}" if np.isfinite(noise) else "any gap"
    if ours > theirs:
        close = ours - theirs <= noise
        out.update(status="tuned-wins", within_chance=bool(close), message=(
            f"The tuned model beats every baseline {where}: {ours:.1%} against {theirs:.1%} for the strongest, "
            f"{title}." + (f" On {examples} a margin this small could be chance ({chance})." if close else "")))
        return out
    more_rows = ("score more labelled rows (studio eval RUN --data FILE, or a labelled file in the Evaluate tab's "
                 "\"Predict a whole file\")")
    if ours == theirs:
        out.update(status="tie", message=(
            f"The tuned model and {title} both score {ours:.1%} {where}: fine-tuning has not shown an advantage on "
            "these rows."), **{"try": [more_rows, *keep_tip(key)]})
        return out
    if theirs - ours <= noise:
        apart = round((theirs - ours) * len(tuned_rows))
        out.update(status="tie", message=(
            f"{title} scores {theirs:.1%} {where} and the tuned model {ours:.1%}: {apart} of {len(tuned_rows)} rows "
            f"apart, within what chance alone moves on {examples} ({chance}), so neither is shown to be the better "
            "model."), **{"try": [more_rows, "more training rows (a few hundred per class)",
                                  "the Thorough preset (a longer automatic search, with fine-tunes)"]})
        return out
    out.update(status="baseline-wins", message=(
        f"{title} scores {theirs:.1%} {where} and the tuned model {ours:.1%}: on this data fine-tuning has not paid "
        "yet, so the simpler baseline is the better model for now."),
        **{"try": ["more training rows (a few hundred per class)", "another base model from the catalog",
                   "the Thorough preset (a longer automatic search, with fine-tunes)", *keep_tip(key)]})
    return out


def scores(probs: np.ndarray, y_true: Sequence[int], n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 of ``probs``' top class."""
    return headline(y_true, probs.argmax(axis=1), n_classes)


def _full_probs(model, probs: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn only has columns for classes it saw; put them back in a (N, C) array."""
    out = np.zeros((len(probs), n_classes), dtype=np.float32)
    out[:, model.classes_] = probs
    return out

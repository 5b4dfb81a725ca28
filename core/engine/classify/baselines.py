"""The honest "before": what a classifier gets without fine-tuning, measured on the same validation split.

Three baselines, each a real model fitted on the training split only:

- majority: always the most frequent training class (what accuracy means nothing above);
- base: nearest class centroid on the base model's frozen embeddings (cosine), what the untouched model knows;
- classical: TF-IDF + logistic regression for text, raw-pixel logistic regression for images. On easy data
  (digits) this is hard to beat, and the user should see that.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .metrics import headline

PIXEL_SIZE = 24  # raw-pixel baseline resolution: big enough for digits and icons, small enough to fit fast


def majority(train_labels: Sequence[int], n_classes: int, n: int) -> np.ndarray:
    """(n, C) one-hot probabilities of the most frequent training class."""
    counts = np.bincount(np.asarray(train_labels), minlength=n_classes)
    probs = np.zeros((n, n_classes), dtype=np.float32)
    probs[:, int(counts.argmax())] = 1.0
    return probs


def tfidf_logreg(train_texts: Sequence[str], train_labels: Sequence[int], texts: Sequence[str],
                 n_classes: int, seed: int = 0) -> np.ndarray:
    """(N, C) probabilities from TF-IDF (words and word pairs) + logistic regression fitted on the training split.

    Args:
        train_texts, train_labels: the training split.
        texts: the texts to score (the validation split).
        n_classes: how many classes.
        seed: the solver's seed.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train_texts = [str(t) for t in train_texts]
    try:  # words of any length (sklearn's default drops one-letter words), and word pairs
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        features = vectorizer.fit_transform(train_texts)
    except ValueError:  # no word characters at all (symbols, emoji): character n-grams still work
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        features = vectorizer.fit_transform(train_texts)
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(features, train_labels)
    return _full_probs(model, model.predict_proba(vectorizer.transform([str(t) for t in texts])), n_classes)


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


def scores(probs: np.ndarray, y_true: Sequence[int], n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 of ``probs``' top class."""
    return headline(y_true, probs.argmax(axis=1), n_classes)


def _full_probs(model, probs: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn only has columns for classes it saw; put them back in a (N, C) array."""
    out = np.zeros((len(probs), n_classes), dtype=np.float32)
    out[:, model.classes_] = probs
    return out

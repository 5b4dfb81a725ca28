"""Classical features computed straight from the items, no neural network: raw pixels for images and TF-IDF
for texts. The baselines use them on their own; a feature head can read them next to the network's features
(on small, unusual data that is what wins cross-validation: digits are drawn in pixels the ImageNet features
only half see). Fitted state (the TF-IDF vocabulary and weights) saves as JSON beside the head.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

PIXEL_SIZE = 24  # big enough for digits and icons, small enough to fit fast
TOKEN = re.compile(r"(?u)\b\w+\b")  # words of any length: sklearn's default drops one-letter words


def pixels(items: Sequence, size: int = PIXEL_SIZE) -> np.ndarray:
    """(N, size*size*3) float32 RGB pixels in [0, 1] of images (paths or PIL images), squashed to a square."""
    from .encoders import open_image

    rows = [np.asarray(open_image(item).resize((size, size)), dtype=np.float32).reshape(-1) / 255.0
            for item in items]
    return np.stack(rows)


class PixelFeatures:
    """Raw pixels of images at ``size`` x ``size`` (nothing to fit)."""

    kind = "pixels"
    standardise = True

    def __init__(self, size: int = PIXEL_SIZE) -> None:
        self.size = int(size)

    @property
    def dim(self) -> int:
        return self.size * self.size * 3

    def fit(self, items: Sequence) -> "PixelFeatures":
        return self

    def transform(self, items: Sequence) -> torch.Tensor:
        return torch.from_numpy(pixels(items, self.size))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size}


class TfidfFeatures:
    """TF-IDF of words and word pairs (sublinear counts, rows of unit length), fitted on the training texts.

    Args:
        max_features: keep the most frequent terms (the head's width stays bounded on large data).
    """

    kind = "tfidf"
    standardise = False  # rows are already of unit length; standardising rare terms would blow them up

    def __init__(self, max_features: int = 20000) -> None:
        self.max_features = int(max_features)
        self.vocabulary: dict[str, int] = {}
        self.idf: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return len(self.vocabulary)

    def fit(self, texts: Sequence[str]) -> "TfidfFeatures":
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [str(t) for t in texts]
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN.pattern,
                                     max_features=self.max_features)
        try:
            vectorizer.fit(texts)
        except ValueError:  # no word characters at all (symbols, emoji): one placeholder term
            self.vocabulary, self.idf = {"": 0}, np.ones(1, dtype=np.float32)
            return self
        self.vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        self.idf = vectorizer.idf_.astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, dim) dense TF-IDF rows (the vocabulary is a few thousand terms on a few hundred texts)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = TOKEN.findall(str(text).lower())
            counts: dict[int, int] = {}
            for term in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                index = self.vocabulary.get(term)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            for index, count in counts.items():
                out[row, index] = (1.0 + np.log(count)) * self.idf[index]
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return torch.from_numpy(out)

    def to_dict(self) -> dict:
        terms = sorted(self.vocabulary, key=self.vocabulary.get)
        return {"kind": self.kind, "max_features": self.max_features, "terms": terms,
                "idf": [float(v) for v in (self.idf if self.idf is not None else [])]}


def classical_from_dict(state: dict):
    """A fitted ``PixelFeatures`` or ``TfidfFeatures`` from its ``to_dict``."""
    if state.get("kind") == "pixels":
        return PixelFeatures(int(state.get("size", PIXEL_SIZE)))
    if state.get("kind") == "tfidf":
        features = TfidfFeatures(int(state.get("max_features", 20000)))
        features.vocabulary = {term: i for i, term in enumerate(state["terms"])}
        features.idf = np.asarray(state["idf"], dtype=np.float32)
        return features
    raise ValueError(f"unknown classical feature kind {state.get('kind')!r} in the saved head: this model was "
                     "saved by a newer studio; update it.")


def classical_for(task: str):
    """The classical features of a task, unfitted: pixels for images, TF-IDF for texts."""
    from ..tasks import get_task
    return PixelFeatures() if get_task(task).modality == "image" else TfidfFeatures()

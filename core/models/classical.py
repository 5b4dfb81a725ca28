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


# The two analyzers of the text features. Words and word pairs carry the topic; character n-grams within words
# carry spelling, inflection and language, and survive typos, identifiers and words the training rows never had.
# Alone (logistic regression, its penalty by cross-validation), words + characters beat words by 4-10 points on
# each of five unseen text sets (docs/QUALITY.md, section 15): program messages by language 0.847 -> 0.941.
WORDS = {"ngram_range": (1, 2), "token_pattern": TOKEN.pattern}
CHARACTERS = {"analyzer": "char_wb", "ngram_range": (2, 5)}


def _vectorizer(analyzer: dict, max_features: int | None = None, vocabulary: dict | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, dtype=np.float32, max_features=max_features, vocabulary=vocabulary,
                           **analyzer)


class TfidfFeatures:
    """TF-IDF of words and word pairs and of character n-grams within words (2-5 characters), fitted on the
    training texts: each part's rows of unit length, the parts side by side and scaled so that a whole row is of
    unit length too.

    Args:
        max_features: keep each part's most frequent terms (the head's width stays bounded on large data).
    """

    kind = "tfidf"
    standardise = False  # rows are already of unit length; standardising rare terms would blow them up

    def __init__(self, max_features: int = 20000) -> None:
        self.max_features = int(max_features)
        # per part (words, characters): the fitted vectorizer; a part no text had a term of is left out
        self.parts: list = []

    @property
    def dim(self) -> int:
        # with no part (the training texts had no term at all), one constant-zero column
        return sum(len(part.vocabulary_) for part in self.parts) or 1

    def fit(self, texts: Sequence[str]) -> "TfidfFeatures":
        self.fit_sparse(texts)
        return self

    def fit_sparse(self, texts: Sequence[str]):
        """Fit on ``texts`` and return their rows, as ``sparse`` would, reading the texts once."""
        texts = [str(t) for t in texts]
        self.parts, blocks = [], []
        for analyzer in (WORDS, CHARACTERS):
            vectorizer = _vectorizer(analyzer, self.max_features)
            try:
                blocks.append(vectorizer.fit_transform(texts))
            except ValueError:  # no term at all (no word characters: symbols, emoji; or every text empty)
                continue
            self.parts.append(vectorizer)
        return self._joined(blocks, len(texts))

    def sparse(self, texts: Sequence[str]):
        """(N, dim) TF-IDF rows as a scipy CSR matrix, float32."""
        texts = [str(t) for t in texts]
        return self._joined([part.transform(texts) for part in self.parts], len(texts))

    @staticmethod
    def _joined(blocks: list, n: int):
        """The parts' rows side by side, scaled so that a row of unit-length parts is of unit length."""
        import scipy.sparse as sp

        if not blocks:
            return sp.csr_matrix((n, 1), dtype=np.float32)
        scale = np.float32(1.0 / np.sqrt(len(blocks)))
        return sp.hstack([block * scale for block in blocks], format="csr", dtype=np.float32)

    def transform(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, dim) dense TF-IDF rows (the heads split a wide, mostly-zero matrix again: fitting.Rows)."""
        return torch.from_numpy(np.ascontiguousarray(self.sparse(texts).toarray()))

    def to_dict(self) -> dict:
        parts = []
        for part in self.parts:
            terms = sorted(part.vocabulary_, key=part.vocabulary_.get)
            parts.append({"analyzer": "words" if part.analyzer == "word" else "characters", "terms": terms,
                          "idf": [float(v) for v in part.idf_]})
        return {"kind": self.kind, "max_features": self.max_features, "parts": parts}

    @classmethod
    def from_dict(cls, state: dict) -> "TfidfFeatures":
        """Fitted features from ``to_dict``; a head saved before the character part (``terms`` and ``idf`` at
        the top) reads words alone, as it was trained."""
        features = cls(int(state.get("max_features", 20000)))
        parts = state.get("parts")
        if parts is None:
            parts = [{"analyzer": "words", "terms": state["terms"], "idf": state["idf"]}] if state.get("terms") else []
        for part in parts:
            if part["analyzer"] not in ("words", "characters"):
                raise ValueError(f"unknown TF-IDF part {part['analyzer']!r} in the saved head: this model was "
                                 "saved by a newer studio; update it.")
            analyzer = WORDS if part["analyzer"] == "words" else CHARACTERS
            vectorizer = _vectorizer(analyzer, vocabulary={term: i for i, term in enumerate(part["terms"])})
            vectorizer.idf_ = np.asarray(part["idf"], dtype=np.float32)
            features.parts.append(vectorizer)
        return features


def classical_from_dict(state: dict):
    """A fitted ``PixelFeatures`` or ``TfidfFeatures`` from its ``to_dict``."""
    if state.get("kind") == "pixels":
        return PixelFeatures(int(state.get("size", PIXEL_SIZE)))
    if state.get("kind") == "tfidf":
        return TfidfFeatures.from_dict(state)
    raise ValueError(f"unknown classical feature kind {state.get('kind')!r} in the saved head: this model was "
                     "saved by a newer studio; update it.")


def classical_for(task: str):
    """The classical features of a task, unfitted: pixels for images, TF-IDF for texts."""
    from ..tasks import get_task
    return PixelFeatures() if get_task(task).modality == "image" else TfidfFeatures()

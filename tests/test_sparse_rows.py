"""Heads on wide TF-IDF views multiply only the nonzeros (``fitting.Rows``): the same products, the same fitted
model to the optimiser's tolerance, and dense features (network taps, standardised pixels) left as they are."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.engine.classify import fitting
from core.engine.classify.fitting import HeadSpec, Rows, body_probs, fit_body
from core.models.classical import TfidfFeatures

WORDS = ["kettle", "boil", "refund", "order", "screen", "login", "password", "parcel", "late", "broken", "lid",
         "app", "invoice", "charge", "card", "button", "light", "water", "scale", "warranty", "return", "box"]


def texts_and_labels(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Texts whose words lean towards their class, so that a linear model has something to learn."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    texts = []
    for label in labels:
        own = WORDS[label * 5:(label + 1) * 5]
        picked = [rng.choice(own) if rng.random() < 0.6 else rng.choice(WORDS) for _ in range(rng.integers(4, 12))]
        texts.append(" ".join(picked) + f" ticket {rng.integers(0, 10_000)}")  # a rare number per text: wide, sparse
    return texts, labels


def network_and_tfidf(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    texts, labels = texts_and_labels(n)
    tfidf = TfidfFeatures().fit(texts).transform(texts)
    dense = torch.randn(n, 64, generator=torch.Generator().manual_seed(1)) / 8
    return torch.cat([dense, tfidf], dim=1), torch.tensor(labels)


def test_a_wide_tfidf_view_is_split_and_its_products_are_the_dense_ones():
    x, _ = network_and_tfidf(600)
    assert x.numel() >= fitting.SPARSE_MIN_ELEMENTS
    rows = Rows(x)
    assert rows.sparse is not None and rows.sparse.layout == torch.sparse_csr
    # the network's block and the common words stay dense; the rare terms, most of the columns, are sparse
    assert set(range(64)) <= set(rows.dense_cols.tolist()) and len(rows.sparse_cols) > 0.9 * x.shape[1]
    linear = nn.Linear(x.shape[1], 4)
    assert torch.allclose(rows.times(linear), linear(x), atol=1e-5)
    out = rows.times(linear).sum()
    out.backward()  # gradients reach the weights through both parts
    assert linear.weight.grad is not None and float(linear.weight.grad[:, 64:].abs().sum()) > 0


def test_dense_or_small_matrices_are_left_as_they_are():
    assert Rows(torch.randn(2000, 600)).sparse is None  # standardised features: nonzero everywhere
    x, _ = network_and_tfidf(60)
    assert x.numel() < fitting.SPARSE_MIN_ELEMENTS and Rows(x).sparse is None


def test_a_fit_through_the_split_is_the_same_model(monkeypatch):
    x, y = network_and_tfidf(600)
    linear, mlp = HeadSpec(l2=1e-3), HeadSpec(l2=1e-2, hidden=32, steps=30)
    split = [body_probs(fit_body(x, y, 4, spec), x) for spec in (linear, mlp)]
    monkeypatch.setattr(fitting, "SPARSE_MIN_ELEMENTS", 10 ** 12)  # the dense path, as before the split
    dense = [body_probs(fit_body(x, y, 4, spec), x) for spec in (linear, mlp)]
    for ours, theirs in zip(split, dense):
        assert (ours.argmax(1) == theirs.argmax(1)).mean() > 0.99
        assert np.abs(ours - theirs).max() < 0.02

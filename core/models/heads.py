"""Small heads that sit on a frozen model's features: a trained linear head, and the base model's own answer
(the nearest class centroid of its embeddings). Training fits them (``core.engine.classify``); the playground,
``studio eval`` and batch prediction load them back (``core.saved``)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

CENTROID_SCALE = 20.0  # cosine similarities (in [-1, 1]) times this give usable softmax probabilities


class LinearHead(nn.Module):
    """Standardise the features with the training split's mean and spread, then one linear layer.

    Args:
        dim: feature size.
        n_classes: how many classes.
    """

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.linear = nn.Linear(dim, n_classes)

    def set_scale(self, features: torch.Tensor) -> None:
        """Take the standardisation from ``features`` (the training split's)."""
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(features.std(dim=0, unbiased=False).clamp_min(1e-4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)



@torch.no_grad()
def head_probs(head: LinearHead, features: torch.Tensor) -> np.ndarray:
    """(N, C) softmax probabilities of ``head`` on ``features``."""
    head.eval()
    return torch.softmax(head(features.float()), dim=1).numpy()


def class_centroids(embeddings: torch.Tensor, labels: Sequence[int], n_classes: int) -> torch.Tensor:
    """(C, D) unit-length mean of each class's unit-length embeddings; a class with no example stays zero.

    Args:
        embeddings: (N, D) base-model embeddings of the training split.
        labels: their label ids.
        n_classes: how many classes.
    """
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    index = torch.as_tensor(list(labels), dtype=torch.long)
    sums = torch.zeros(n_classes, unit.shape[1]).index_add_(0, index, unit)
    return torch.nn.functional.normalize(sums, dim=1)


def centroid_probs(centroids: torch.Tensor, embeddings: torch.Tensor, scale: float = CENTROID_SCALE) -> np.ndarray:
    """(N, C) softmax over scaled cosine similarities to each class centroid."""
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    return torch.softmax(scale * unit @ centroids.T, dim=1).numpy()



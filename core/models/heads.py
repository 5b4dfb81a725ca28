"""Small heads that sit on a frozen model's features: a trained linear head (one tap), a feature head (several
taps and classical features, linear or MLP), and the base model's own answer (the nearest class centroid of its
embeddings). Training fits them (``core.engine.classify``); the playground, ``studio eval`` and batch prediction
load them back (``core.saved``)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

CENTROID_SCALE = 20.0  # cosine similarities (in [-1, 1]) times this give usable softmax probabilities
WHOLE_BLOCK = "whole block"  # FeatureHead.set_scale: centre the columns, scale the block by one number


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

class RBFMap(nn.Module):
    """A kernel head's first layer: ``exp(-gamma * |x - c|²)`` to each of its centres (the training rows' prepared
    features), so the linear layer after it is a kernel machine (an RBF SVM's kind of model, on any feature blocks).

    Args:
        rows: how many centres.
        dim: feature size.
    """

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.zeros(rows, dim))
        self.register_buffer("gamma", torch.ones(()))
        self.register_buffer("centre_norms", torch.zeros(rows))

    @classmethod
    def on(cls, x: torch.Tensor, width: float) -> "RBFMap":
        """The map centred on the rows of ``x``, its gamma ``width`` / the rows' mean squared distance (so one
        grid of widths suits features of any scale)."""
        x = x.float()
        rbf = cls(x.shape[0], x.shape[1])
        with torch.no_grad():
            rbf.centres.copy_(x)
            rbf.centre_norms.copy_((x * x).sum(1))
            centred = x - x.mean(0)
            mean_sq_distance = 2.0 * float((centred * centred).sum(1).mean())  # E|a - b|² over pairs of rows
            rbf.gamma.fill_(width / max(mean_sq_distance, 1e-8))
        return rbf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        squared = (x * x).sum(1, keepdim=True) - 2.0 * x @ self.centres.T + self.centre_norms
        return torch.exp(-self.gamma * squared.clamp_min(0.0))


def make_body(dim: int, n_classes: int, hidden: int = 0, dropout: float = 0.2, kernel_rows: int = 0) -> nn.Module:
    """The trainable part of a feature head: ``nn.Linear``, Linear-GELU-Dropout-Linear when ``hidden``, or an
    ``RBFMap`` on ``kernel_rows`` centres followed by ``nn.Linear`` (a kernel head)."""
    if kernel_rows:
        return nn.Sequential(RBFMap(kernel_rows, dim), nn.Linear(kernel_rows, n_classes))
    if not hidden:
        return nn.Linear(dim, n_classes)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))


def kernel_rows(body: nn.Module) -> int:
    """How many centres a head body's ``RBFMap`` holds; 0 when it is not a kernel head."""
    first = body[0] if isinstance(body, nn.Sequential) else None
    return int(first.centres.shape[0]) if isinstance(first, RBFMap) else 0


class FeatureHead(nn.Module):
    """Several feature blocks (taps of the frozen model, raw pixels, TF-IDF), each standardised and scaled to unit
    mean square norm so that no block drowns the others by its width, concatenated, then a linear layer or a
    small MLP.

    Args:
        block_dims: the width of each block, in the order the features are concatenated.
        n_classes: how many classes.
        hidden: 0 for a linear layer (logistic regression), else the MLP's hidden width.
        kernel: the number of centres of a kernel head (``RBFMap``); 0 for none.
    """

    def __init__(self, block_dims: Sequence[int], n_classes: int, hidden: int = 0, kernel: int = 0) -> None:
        super().__init__()
        self.block_dims = [int(d) for d in block_dims]
        total = sum(self.block_dims)
        self.register_buffer("mean", torch.zeros(total))
        self.register_buffer("scale", torch.ones(total))
        self.body = make_body(total, n_classes, hidden, kernel_rows=kernel)

    def set_scale(self, features: torch.Tensor, standardise: Sequence[bool | str]) -> None:
        """Take each block's standardisation from ``features`` (the training rows, blocks concatenated).

        Args:
            features: (N, sum(block_dims)).
            standardise: per block: True to subtract each column's mean and divide by its spread (dense features);
                False to keep the values (TF-IDF rows, already of unit length); ``WHOLE_BLOCK`` to subtract each
                column's mean and divide the block by one number, its rows' root mean square norm (raw pixels
                under a kernel head: their contrast kept, the near-constant border not blown up into noise).
        """
        start = 0
        for dim, std_it in zip(self.block_dims, standardise):
            part = features[:, start:start + dim].float()
            if std_it == WHOLE_BLOCK:
                mean = part.mean(dim=0)
                self.mean[start:start + dim] = mean
                norm = float((part - mean).pow(2).sum(1).mean().sqrt())
                self.scale[start:start + dim] = 1.0 / max(norm, 1e-6)
            elif std_it:
                self.mean[start:start + dim] = part.mean(dim=0)
                spread = part.std(dim=0, unbiased=False).clamp_min(1e-3)
                self.scale[start:start + dim] = 1.0 / (spread * math.sqrt(dim))
            else:
                self.mean[start:start + dim] = 0.0
                self.scale[start:start + dim] = 1.0
            start += dim

    def prepare(self, features: torch.Tensor) -> torch.Tensor:
        """The standardised, scaled features the body reads."""
        return (features.float() - self.mean) * self.scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(features))


@torch.no_grad()
def head_probs(head: nn.Module, features: torch.Tensor) -> np.ndarray:
    """(N, C) softmax probabilities of ``head`` (a ``LinearHead`` or ``FeatureHead``) on ``features``."""
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



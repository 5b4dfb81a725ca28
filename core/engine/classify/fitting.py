"""Fitting heads on cached features, fast enough to cross-validate many of them in seconds.

Three heads, all ``torch`` modules that ``core.models.heads.FeatureHead`` saves and loads:

- logistic regression (a linear layer) fitted to convergence with L-BFGS and an L2 penalty chosen by
  cross-validation: on a few hundred examples that is what generalises best and it is deterministic;
- a one-hidden-layer MLP (GELU, dropout) trained full-batch with AdamW for a fixed number of steps;
- a kernel head: logistic regression on RBF similarities to the training rows (``heads.RBFMap``), the kind of
  model an RBF SVM is, on the same feature blocks (it wins where the classes are not linearly separable in the
  features, such as small scans on raw pixels).

Inputs are the standardised blocks of ``FeatureHead.prepare`` (each block scaled to unit mean square norm), so
one grid of penalties suits every feature set.
"""
from __future__ import annotations

import dataclasses
import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...data.groups import folds as group_folds
from ...models.heads import RBFMap, make_body

# Measured on 384 Debian package descriptions (MiniLM features): the best penalty on unseen rows was 3e-3, with
# 0.83 accuracy against 0.79 at 1e-4; a half-decade grid finds it (the search takes the strongest penalty within
# one standard error of the best cross-validated accuracy).
L2_GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
# kernel heads (logistic regression on RBF similarities to n training rows): an SVM's C of 1-100 on a few hundred
# rows is an L2 penalty near 1 / (C n); each penalty is an L-BFGS fit, so the grid is coarser (on unseen digit
# scans 1e-4, the weakest of 1e-2..1e-4, won at every width)
KERNEL_L2_GRID = (1e-3, 1e-4, 1e-5, 1e-6)


@dataclass(frozen=True)
class HeadSpec:
    """One head to fit: a linear layer (``hidden == 0``), an MLP, or a kernel head (``kernel_width``).

    Args:
        l2: L2 penalty on the weights (logistic regression) or AdamW weight decay (MLP).
        hidden: width of the MLP's hidden layer; 0 for logistic regression.
        label_smoothing: cross-entropy label smoothing.
        steps: optimiser steps (L-BFGS iterations, or AdamW steps for the MLP).
        kernel_width: above 0, a linear layer on an RBF kernel to the training rows (``heads.RBFMap``), its gamma
            this multiple of 1 / the rows' mean squared distance.
    """

    l2: float = 1e-3
    hidden: int = 0
    label_smoothing: float = 0.0
    steps: int = 150
    kernel_width: float = 0.0

    def describe(self) -> str:
        kind = f"MLP ({self.hidden} hidden)" if self.hidden else "logistic regression"
        if self.kernel_width:
            kind = f"RBF kernel logistic regression (width {self.kernel_width:g})"
        smooth = f", label smoothing {self.label_smoothing:g}" if self.label_smoothing else ""
        return f"{kind}, L2 {self.l2:g}{smooth}"

    @property
    def kind(self) -> str:
        """The head's kind in a candidate's name: "MLP", "RBF kernel" or "" (the objective's linear model)."""
        return "MLP" if self.hidden else "RBF kernel" if self.kernel_width else ""


def fit_body(x: torch.Tensor, y: torch.Tensor, n_classes: int, spec: HeadSpec, seed: int = 0,
             weights: torch.Tensor | None = None) -> nn.Module:
    """Fit a head body on prepared features.

    Args:
        x: (N, D) prepared (standardised) features.
        y: (N,) label ids.
        n_classes: how many classes.
        spec: which head and its regularisation.
        seed: initialisation and dropout.
        weights: optional (N,) example weights (augmented copies count less than originals).
    """
    torch.manual_seed(seed)
    if spec.kernel_width:
        rbf = RBFMap.on(x, spec.kernel_width)
        with torch.no_grad():
            mapped = rbf(x)
        linear = fit_body(mapped, y, n_classes, dataclasses.replace(spec, kernel_width=0.0), seed, weights)
        return nn.Sequential(rbf, linear).eval()
    body = make_body(x.shape[1], n_classes, spec.hidden)
    if not spec.hidden:
        nn.init.zeros_(body.weight)
        nn.init.zeros_(body.bias)
        return _fit_lbfgs(body, x, y, spec, weights)
    return _fit_adamw(body, x, y, spec, weights)


# A column that is nonzero in at most this share of the rows is read as sparse (TF-IDF terms: a word pair is in a
# handful of texts), and a matrix is split only when it is this big and mostly such columns (network features and
# standardised pixels are dense everywhere and stay as they are).
SPARSE_COLUMN_SHARE = 0.2
SPARSE_MIN_ELEMENTS = 1_000_000


class Rows:
    """The prepared rows a fit multiplies by its first layer at every step. Where most columns are mostly zeros
    (TF-IDF beside a network's dense features), those columns are kept as a CSR matrix beside the dense ones, so
    each product touches only the nonzeros: the same model to the optimiser's tolerance, 2.7-5x faster to fit
    (logistic regression on MiniLM + TF-IDF of Debian descriptions, two threads: 400 rows x 17,860 columns 1.85 ->
    0.36 s, 3,600 x 20,384 4.7 -> 1.7 s; `python -m bench.classifiers` measures it on the shipped tickets)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.sparse: torch.Tensor | None = None
        if x.numel() < SPARSE_MIN_ELEMENTS or x.layout != torch.strided:
            return
        mostly_zero = (x != 0).float().mean(dim=0) <= SPARSE_COLUMN_SHARE
        if int(mostly_zero.sum()) * 2 < x.shape[1]:
            return
        self.dense_cols = torch.nonzero(~mostly_zero).squeeze(1)
        self.sparse_cols = torch.nonzero(mostly_zero).squeeze(1)
        self.dense = x[:, self.dense_cols].contiguous()
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state": sparse.mm is what is used
            warnings.simplefilter("ignore", UserWarning)
            self.sparse = x[:, self.sparse_cols].to_sparse_csr()

    def times(self, linear: nn.Linear) -> torch.Tensor:
        """``linear(x)``, through the sparse columns' nonzeros where there is a split."""
        if self.sparse is None:
            return linear(self.x)
        weight = linear.weight
        dense = self.dense @ weight[:, self.dense_cols].t()
        return dense + torch.sparse.mm(self.sparse, weight[:, self.sparse_cols].t()) + linear.bias


def _loss(logits, y, spec: HeadSpec, weights) -> torch.Tensor:
    per = nn.functional.cross_entropy(logits, y, label_smoothing=spec.label_smoothing, reduction="none")
    return per.mean() if weights is None else (per * weights).sum() / weights.sum()


def _fit_lbfgs(body: nn.Linear, x, y, spec: HeadSpec, weights) -> nn.Module:
    optimizer = torch.optim.LBFGS(body.parameters(), lr=1.0, max_iter=spec.steps, history_size=20,
                                  tolerance_grad=1e-5, tolerance_change=1e-7, line_search_fn="strong_wolfe")
    rows = Rows(x)

    def closure():
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(rows.times(body), y, spec, weights) + 0.5 * spec.l2 * body.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return body.eval()


def _fit_adamw(body: nn.Module, x, y, spec: HeadSpec, weights) -> nn.Module:
    optimizer = torch.optim.AdamW(body.parameters(), lr=3e-3, weight_decay=spec.l2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.steps)
    body.train()
    rows, first, rest = Rows(x), body[0], body[1:]
    for _ in range(spec.steps):
        optimizer.zero_grad(set_to_none=True)
        _loss(rest(rows.times(first)), y, spec, weights).backward()
        optimizer.step()
        schedule.step()
    return body.eval()


@torch.no_grad()
def body_probs(body: nn.Module, x: torch.Tensor) -> np.ndarray:
    body.eval()
    return torch.softmax(body(x), dim=1).numpy()


Prepare = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def cross_val_probs(prepare_fold: Callable[[np.ndarray, np.ndarray], tuple], labels: Sequence[int],
                    folds: list[tuple[np.ndarray, np.ndarray]], n_classes: int, specs: Sequence[HeadSpec],
                    seed: int = 0, stop: threading.Event | None = None) -> list[np.ndarray | None]:
    """Out-of-fold probabilities of every spec: for each fold the features are prepared from the training part
    only (its mean and spread), each spec fitted there and scored on the held-out part.

    Args:
        prepare_fold: (train_index, test_index) -> (x_train, y_train, weights or None, x_test), prepared.
        labels: every training example's label id.
        folds: (train_index, test_index) pairs over the training rows.
        n_classes: how many classes.
        specs: the heads to compare.
        seed: initialisation.
        stop: checked between fits; unfinished specs come back as None.
    Returns one (N, C) array of held-out probabilities per spec (rows outside every test fold stay zero).
    """
    def fit(x, y, spec, weights):
        return fit_body(x, y, n_classes, spec, seed, weights)

    return cross_val_predict(prepare_fold, len(labels), folds, specs, fit, body_probs, stop)


def cross_val_predict(prepare_fold: Callable[[np.ndarray, np.ndarray], tuple], n: int,
                      folds: list[tuple[np.ndarray, np.ndarray]], specs: Sequence[HeadSpec], fit: Callable,
                      predict: Callable, stop: threading.Event | None = None) -> list[np.ndarray | None]:
    """Out-of-fold predictions of every spec, whatever a head predicts (class probabilities, numbers).

    Args:
        prepare_fold: (train_index, test_index) -> (x_train, y_train, weights or None, x_test), prepared.
        n: training rows.
        folds: (train_index, test_index) pairs over the training rows.
        specs: the heads to compare.
        fit: (x, y, spec, weights) -> a fitted body.
        predict: (body, x) -> an array with one row per example.
        stop: checked between fits; unfinished specs come back as None.
    Returns one array per spec, its rows at the training rows' positions (rows outside every test fold zero).
    """
    out: list[np.ndarray | None] = [None] * len(specs)
    stopped = [False] * len(specs)
    for train_idx, test_idx in folds:
        x_train, y_train, weights, x_test = prepare_fold(train_idx, test_idx)
        for i, spec in enumerate(specs):
            if stopped[i] or (stop is not None and stop.is_set()):
                stopped[i] = True
                continue
            predicted = predict(fit(x_train, y_train, spec, weights), x_test)
            if out[i] is None:
                out[i] = np.zeros((n,) + predicted.shape[1:], dtype=np.float32)
            out[i][test_idx] = predicted
    return [None if s else o for o, s in zip(out, stopped)]


def folds_for(labels: Sequence[int], k: int, seed: int,
              groups: Sequence[str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k folds over the training rows (fewer when the smallest class has fewer examples; one
    random fifth held out when a class has a single example). With ``groups`` (the data's group column) each
    group lies in one fold, stratified as well as whole groups allow (``core.data.groups.folds``)."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    if groups is not None:
        return group_folds(np.asarray(groups), k, seed, labels)
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    k = min(k, smallest)
    if k < 2:
        order = np.random.default_rng(seed).permutation(len(labels))
        cut = max(1, len(labels) // 5)
        return [(np.sort(order[cut:]), np.sort(order[:cut]))]
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


# --- calibration ----------------------------------------------------------------------------------
# Temperatures tried when calibrating a head's probabilities (a log grid from 1/20 to 20 is wide enough for any
# penalty in L2_GRID: a strong penalty gives timid probabilities, temperature well below 1).
TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 121)))


def row_log_losses(probs: np.ndarray, labels: Sequence[int], temperature: float = 1.0) -> np.ndarray:
    """Each row's cross-entropy of its true class after dividing the log-probabilities by ``temperature``.

    Args:
        probs: (N, C) probabilities.
        labels: (N,) label ids.
        temperature: 1 leaves the probabilities as they are.
    """
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(z)), np.asarray(labels)]


def within_paired_error(rows: np.ndarray, best_rows: np.ndarray) -> bool:
    """Whether per-row losses ``rows`` (log-losses, absolute errors) are worse than ``best_rows``, the same rows'
    under the best candidate, by at most one standard error of the row-by-row difference: the noise of the
    difference itself, which every candidate's share of hard rows does not inflate."""
    gap = np.asarray(rows, dtype=np.float64) - np.asarray(best_rows, dtype=np.float64)
    return float(gap.mean()) <= float(gap.std()) / np.sqrt(max(1, len(gap)))


def fit_temperature(probs: np.ndarray, labels: Sequence[int]) -> float:
    """The temperature that minimises the mean cross-entropy of out-of-fold probabilities.

    An L2 penalty strong enough to choose well by accuracy leaves the probabilities timid (a loss of 1.3 where
    0.55 is reachable on 8 classes); dividing the head's logits by this temperature fixes that without changing
    any prediction, so the head's loss and its confidence mean what they say.
    """
    return min(TEMPERATURES, key=lambda t: float(row_log_losses(probs, labels, t).mean()))


def apply_temperature(body: nn.Module, temperature: float) -> nn.Module:
    """Divide the logits of ``body`` (a linear layer, or an MLP ending in one) by ``temperature``, in place."""
    last = body if isinstance(body, nn.Linear) else [m for m in body.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.div_(temperature)
        if last.bias is not None:
            last.bias.div_(temperature)
    return body

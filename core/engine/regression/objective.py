"""The automatic search's objective for regression: heads and fine-tunes that predict one number, scored by mean
absolute error (see ``core.engine.classify.objective`` for the protocol both objectives follow).

Heads and fine-tunes fit standardised targets (``(value - mean) / spread`` of the training rows), so one grid of
penalties and the classifiers' learning rates suit any unit. A fitted head has the scale folded into its output
layer (``core.models.regressors.fold_target_scale``) and predicts in the target's units; a fine-tune is folded once
it has finished (``finish``).

- Ridge regression is fitted in closed form (the dual form when there are more features than rows), its penalty
  chosen by cross-validation with the one-standard-error rule (the strongest penalty whose absolute errors are
  within one paired standard error of the best one's, row by row), as the classifiers' logistic regression is.
- The MLP and the fine-tunes train with the Huber loss: squared error for errors under one spread of the target,
  absolute beyond, so a few extreme rows do not dominate a few hundred.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ...models import regressors
from ...models.classifiers import ModelInputs
from ...models.heads import RBFMap, make_body
from ..classify.fitting import HeadSpec, within_paired_error
from ..classify.search import Candidate
from . import metrics

# Penalties for ridge on prepared features (each block standardised to unit mean square norm, so X'X/n has trace 1
# per block): half-decades from almost none to strong.
RIDGE_GRID = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4)
# Ridge on RBF similarities to the training rows wants far weaker penalties (on unseen digit scans the best was at
# 1e-6 and below, where it flattens out)
KERNEL_RIDGE_GRID = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
HUBER_DELTA = 1.0  # in spreads of the target
TAP_RIDGE = 0.1  # the penalty that ranks taps (z-scored features), as the classifiers' ridge ranking uses
MLP_LR = 3e-3


class Regression:
    """Heads and fine-tunes that predict one number.

    Args:
        mean: the training targets' mean.
        std: their spread (standard deviation; 1 when they are all equal).
        column: the target's name, for messages.
    """

    kind = "regression"
    metric = "mae"
    higher_is_better = False
    linear_name = "Ridge regression"
    loss_name = "Huber on standardised targets"
    l2_grid = RIDGE_GRID
    kernel_l2_grid = KERNEL_RIDGE_GRID
    penalties_share_a_fit = True  # closed form: every penalty on the same features reuses one decomposition
    augments = False  # a shifted or zoomed picture may lose what is counted or measured
    outputs = 1
    labels: list[str] = []

    def __init__(self, mean: float, std: float, column: str = "target", low: float | None = None,
                 high: float | None = None) -> None:
        self._gram: Gram | None = None  # the last features' decomposition: each further penalty reuses it
        self._kernel_kept: tuple | None = None  # the last (features, width, RBF map, mapped rows)
        self.mean = float(mean)
        self.std = float(std) if std and np.isfinite(std) and std > 0 else 1.0
        self.column = column
        # predictions are kept within the training targets' range (``regressors.within_range``), in the search's
        # out-of-fold scores as in the saved run's answers, so the search chooses what the run will answer
        self.low, self.high = low, high

    @classmethod
    def of(cls, values: Sequence[float], column: str = "target") -> "Regression":
        """The objective for these training targets."""
        values = np.asarray(values, dtype=np.float64)
        return cls(float(values.mean()), float(values.std()), column, float(values.min()), float(values.max()))

    def to_dict(self) -> dict:
        return {"column": self.column, "mean": self.mean, "std": self.std, "min": self.low, "max": self.high}

    def within_range(self, predicted: np.ndarray) -> np.ndarray:
        return regressors.within_range(predicted, self.low, self.high)

    # --- the search's heads ---------------------------------------------------------------------------
    def targets(self, values: Sequence[float]) -> torch.Tensor:
        """Standardised targets, what heads and fine-tunes fit."""
        return (torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32) - self.mean) / self.std

    def folds(self, values: Sequence[float], k: int, seed: int,
              groups: Sequence[str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """k shuffled folds, each with low, middle and high values (stratified by quantile bins when every bin
        has k rows); with ``groups`` each group lies in one fold (``core.data.groups.folds``)."""
        from sklearn.model_selection import KFold, StratifiedKFold

        from ...data.groups import folds as group_folds
        from ...data.regression import value_bins

        values = np.asarray(values, dtype=np.float64)
        bins = value_bins(values)
        if groups is not None:
            return group_folds(np.asarray(groups), k, seed, bins)
        k = max(2, min(k, len(values)))
        if bins is not None and np.bincount(bins).min() >= k:
            return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(values, bins))
        return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(values))

    def tap_scores(self, taps, values: Sequence[float], seed: int,
                   groups: Sequence[str] | None = None) -> list[float | None]:
        """Cross-validated R² of a ridge regression on each tap's standardised features (higher is better)."""
        y = self.targets(values).double()
        folds = self.folds(values, 3, seed, groups)
        out = []
        for features in taps:
            x = features.double()
            predicted = torch.zeros_like(y)
            for train_idx, test_idx in folds:
                mean, std = x[train_idx].mean(0), x[train_idx].std(0, unbiased=False).clamp_min(1e-4)
                weight, bias = ridge((x[train_idx] - mean) / std, y[train_idx], TAP_RIDGE)
                predicted[test_idx] = ((x[test_idx] - mean) / std) @ weight + bias
            out.append(metrics.scores(y.numpy(), predicted.numpy())["r2"])
        return out

    def fit(self, x: torch.Tensor, y: torch.Tensor, spec: HeadSpec, seed: int = 0,
            weights: torch.Tensor | None = None) -> nn.Module:
        """A head body on prepared features and standardised targets, predicting in the target's units.

        Args:
            x: (N, D) prepared features.
            y: (N,) standardised targets.
            spec: ridge (``hidden == 0``, ``l2`` its penalty) or an MLP (``l2`` its weight decay).
            seed: initialisation and dropout (MLP).
            weights: optional (N,) example weights.
        """
        torch.manual_seed(seed)
        if spec.kernel_width:
            rbf, mapped = self._kernel(x, spec.kernel_width)
            linear = self.fit(mapped, y, dataclasses.replace(spec, kernel_width=0.0), seed, weights)
            return nn.Sequential(rbf, linear).eval()  # the linear layer already predicts in the target's units
        body = make_body(x.shape[1], 1, spec.hidden)
        if spec.hidden:
            _fit_mlp(body, x, y, spec, weights)
        else:
            gram = self._gram
            if gram is None or gram.x is not x or gram.weights is not weights:  # a new fold's features
                gram = self._gram = Gram(x, weights)
            weight, bias = gram.solve(y.double(), spec.l2)
            with torch.no_grad():
                body.weight.copy_(weight.float().unsqueeze(0))
                body.bias.fill_(float(bias))
        regressors.fold_target_scale(body, self.mean, self.std)
        return body.eval()

    @torch.no_grad()
    def _kernel(self, x: torch.Tensor, width: float) -> tuple[RBFMap, torch.Tensor]:
        """The RBF map on ``x``'s rows and the rows mapped by it; kept for the next penalty on the same features,
        so that ridge's decomposition of the mapped rows (``Gram``) is reused too."""
        kept = self._kernel_kept
        if kept is not None and kept[0] is x and kept[1] == width:
            return kept[2], kept[3]
        rbf = RBFMap.on(x, width)
        mapped = rbf(x).double()
        self._kernel_kept = (x, width, rbf, mapped)
        return rbf, mapped

    @torch.no_grad()
    def predict(self, head: nn.Module, x: torch.Tensor) -> np.ndarray:
        """(N,) predictions of a fitted head (or a feature head) in the target's units."""
        head.eval()
        return self.within_range(head(x.float()).reshape(-1).numpy())

    def describe_head(self, spec: HeadSpec) -> str:
        if spec.hidden:
            return f"MLP ({spec.hidden} hidden), weight decay {spec.l2:g}, Huber loss"
        if spec.kernel_width:
            return f"ridge regression on an RBF kernel (width {spec.kernel_width:g}), L2 {spec.l2:g}"
        return f"ridge regression, L2 {spec.l2:g}"

    def candidate_scores(self, values: np.ndarray, predicted: np.ndarray, held_values: np.ndarray,
                         held_predicted: np.ndarray) -> dict:
        """Candidate fields from out-of-fold predictions: over every row, and on the first fold's held-out rows."""
        scores = metrics.scores(values, predicted)
        return {"cv_mae": scores["mae"], "cv_rmse": scores["rmse"], "cv_r2": scores["r2"],
                "holdout_mae": metrics.scores(held_values, held_predicted)["mae"]}

    def score_of(self, candidate: Candidate, where: str = "cv") -> float | None:
        return getattr(candidate, f"{where}_mae")

    def better(self, a: float | None, b: float | None, margin: float = 0.0) -> bool:
        """Whether error ``a`` beats ``b`` by more than ``margin`` of ``b`` (a share); a missing ``b`` loses."""
        if a is None:
            return False
        return b is None or a < b * (1.0 - margin)

    penalty_rule = ("the strongest within one paired standard error (of the row-by-row difference in absolute "
                    "error) of the lowest cross-validated mean absolute error")

    def choose_penalty(self, candidates: list[Candidate], rows: int) -> Candidate:
        """The most regularised ridge whose cross-validated absolute errors, compared row by row with the best
        penalty's, are within one standard error of that difference, as the classifiers' rule compares log-losses.

        The standard error of a MAE itself (the spread of the absolute errors over sqrt(rows)) is mostly the rows'
        own difficulty, which every penalty shares: on unseen Debian package sizes it let the rule pick a penalty
        ten times stronger than the best (cross-validated MAE 0.544 against 0.530; 0.561 against 0.539 on the test
        rows). Candidates without out-of-fold predictions fall back to that unpaired rule.
        """
        best = min(candidates, key=lambda c: c.cv_mae)
        if all(getattr(c, "_oof", None) is not None for c in candidates):
            errors = {id(c): np.abs(np.asarray(c._oof[1], dtype=np.float64) - np.asarray(c._oof[0], dtype=np.float64))
                      for c in candidates}

            def close(c: Candidate) -> bool:
                return within_paired_error(errors[id(c)], errors[id(best)])
        else:
            error = float(np.sqrt(max(best.cv_rmse ** 2 - best.cv_mae ** 2, 0.0) / max(1, rows)))

            def close(c: Candidate) -> bool:
                return c.cv_mae <= best.cv_mae + error
        return max((c for c in candidates if close(c)), key=lambda c: (c.settings["l2"], -c.cv_mae))

    def choose_head(self, candidates: list[Candidate], best: Candidate) -> tuple[Candidate, str]:
        """The head to keep: ``best``, the lowest cross-validated error (the classifiers' preference for a simpler
        head within the noise, ``Classification.choose_head``, is not measured on numbers: a kernel head won the
        unseen digit values by 0.12 of MAE)."""
        return best, ""

    def show(self, score: float | None) -> str:
        return "-" if score is None else f"MAE {score:.4g}"

    # --- the search's fine-tunes ----------------------------------------------------------------------
    def build_model(self, resolved, task: str) -> nn.Module:
        return regressors.build_regressor(resolved, task)

    def load_model(self, folder, resolved, task: str) -> nn.Module:
        return regressors.load_regressor(folder, resolved, task)

    def predict_items(self, model: nn.Module, inputs: ModelInputs, items: Sequence) -> np.ndarray:
        return self.within_range(regressors.predict_values(model, inputs, list(items)))

    def row_scores(self, values: Sequence[float], predicted: np.ndarray) -> np.ndarray:
        """Per row, higher is better: minus the absolute error, in the target's units."""
        return -np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(values, dtype=np.float64))

    def model_row_scores(self, model: nn.Module, inputs: ModelInputs, items: Sequence,
                         values: Sequence[float]) -> np.ndarray:
        """``row_scores`` of a model in training (standardised outputs) on ``items``."""
        predicted = regressors.predict_values(model, inputs, list(items)) * self.std + self.mean
        return self.row_scores(values, self.within_range(predicted))

    def tune_loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.huber_loss(outputs.float().reshape(-1), y.float(), delta=HUBER_DELTA)

    def tune_score(self, model: nn.Module, inputs: ModelInputs, items: Sequence, values: Sequence) -> float:
        """Mean absolute error, in the target's units, of a model still in training (standardised outputs)."""
        predicted = regressors.predict_values(model, inputs, list(items)) * self.std + self.mean
        return metrics.scores(values, self.within_range(predicted))["mae"]

    def finish(self, model: nn.Module) -> None:
        """Fold the target's scale into the trained model's output layer (once, when training has ended)."""
        regressors.fold_target_scale(model, self.mean, self.std)


def ridge(x: torch.Tensor, y: torch.Tensor, l2: float, weights: torch.Tensor | None = None):
    """(weight, bias) minimising the mean squared error + ``l2`` * |weight|², with an unpenalised bias.

    Args:
        x: (N, D) features.
        y: (N,) targets.
        l2: the penalty, relative to the mean squared error.
        weights: optional (N,) example weights.
    """
    n, d = x.shape
    w = torch.ones(n, dtype=x.dtype) if weights is None else weights.to(x.dtype) / weights.to(x.dtype).mean()
    x_mean = (w[:, None] * x).sum(0) / w.sum()
    y_mean = (w * y).sum() / w.sum()
    root = w.sqrt()
    xc, yc = (x - x_mean) * root[:, None], (y - y_mean) * root
    if d > n:  # the dual form solves an n x n system instead of d x d
        alpha = torch.linalg.solve(xc @ xc.T + l2 * n * torch.eye(n, dtype=x.dtype), yc)
        weight = xc.T @ alpha
    else:
        weight = torch.linalg.solve(xc.T @ xc + l2 * n * torch.eye(d, dtype=x.dtype), xc.T @ yc)
    return weight, y_mean - x_mean @ weight


class Gram:
    """Ridge regression on one matrix of features for any number of penalties: the centred features' Gram matrix
    (rows x rows in the dual form, features x features in the primal) is formed and eigen-decomposed once, and
    each penalty then costs two products. The search fits ten penalties on each fold's features; forming the
    Gram matrix of 640 rows of TF-IDF next to MiniLM's features once per penalty took 124 s on a busy CPU.

    Args:
        x: (N, D) features (kept by identity: the fit reuses this decomposition only for the same tensor).
        weights: optional (N,) example weights.
    """

    def __init__(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        self.x, self.weights = x, weights
        data = x.double()
        n, d = data.shape
        w = torch.ones(n, dtype=data.dtype) if weights is None else weights.double() / weights.double().mean()
        self.w, self.n, self.dual = w, n, d > n
        self.x_mean = (w[:, None] * data).sum(0) / w.sum()
        self.root = w.sqrt()
        self.xc = (data - self.x_mean) * self.root[:, None]
        self.values, self.vectors = torch.linalg.eigh(self.xc @ self.xc.T if self.dual else self.xc.T @ self.xc)

    def solve(self, y: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) minimising the mean squared error + ``l2`` * |weight|², as ``ridge`` gives them."""
        y = y.double()
        y_mean = (self.w * y).sum() / self.w.sum()
        yc = (y - y_mean) * self.root
        inverse = 1.0 / (self.values.clamp_min(0.0) + l2 * self.n)
        if self.dual:
            weight = self.xc.T @ (self.vectors @ (inverse * (self.vectors.T @ yc)))
        else:
            weight = self.vectors @ (inverse * (self.vectors.T @ (self.xc.T @ yc)))
        return weight, y_mean - self.x_mean @ weight


def _fit_mlp(body: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: HeadSpec, weights) -> None:
    optimizer = torch.optim.AdamW(body.parameters(), lr=MLP_LR, weight_decay=spec.l2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.steps)
    body.train()
    for _ in range(spec.steps):
        optimizer.zero_grad(set_to_none=True)
        per = nn.functional.huber_loss(body(x).reshape(-1), y, delta=HUBER_DELTA, reduction="none")
        loss = per.mean() if weights is None else (per * weights).sum() / weights.sum()
        loss.backward()
        optimizer.step()
        schedule.step()

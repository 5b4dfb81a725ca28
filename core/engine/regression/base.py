"""What every regression recipe shares: targets, the base model's ridge head and the evaluation against baselines.

The classifiers' ``BaseRecipe`` gives the data access and the cached frozen features; this class swaps the classes
for a number: the objective (``Regression``, from the training targets), ``target.json`` beside the saved model,
and instead of class centroids a ridge head on the base model's last tap (``base_head.safetensors``), which is both
the "base model" baseline and what the playground answers for "base".
"""
from __future__ import annotations

import numpy as np

from ... import saved
from ...data import groups
from ...data.overview import scored_on
from ...models.encoders import open_image
from ...models.heads import FeatureHead
from ..classify.base import BaseRecipe
from ..classify.baselines import Baseline, add_to_report
from ..classify.fitting import HeadSpec, cross_val_predict
from . import baselines, metrics
from .objective import Regression

MAX_WORST = 30
BASE_HEAD = (saved.BASE_HEAD_FILE, saved.BASE_HEAD_CONFIG)


class RegressionBase(BaseRecipe):
    """Targets, the base ridge head, target.json and the evaluation of a regression recipe."""

    base_head: FeatureHead | None = None

    def make_objective(self) -> Regression:
        """Standardisation from the training targets (at least two different values)."""
        values = np.asarray(self.ctx.data.train["target"], dtype=np.float64)
        if len(values) < 2 or np.ptp(values) == 0:
            raise ValueError("the training rows have fewer than two different target values: there is nothing to "
                             "predict; choose the column whose numbers differ between examples.")
        return Regression.of(values, (self.ctx.data.columns or {}).get("target", "target"))

    # --- data -------------------------------------------------------------------------------------------
    def split(self, name: str) -> tuple[list, list[float]]:
        dataset = getattr(self.ctx.data, name)
        if dataset is None or len(dataset) == 0:
            raise ValueError(f"the {name} split is empty: give more data or a larger validation fraction.")
        return list(dataset[self.column]), [float(v) for v in dataset["target"]]

    # --- what is saved beside the model --------------------------------------------------------------------
    def write_info(self, folder, info: dict) -> None:
        """``classifier.json`` (how to load and feed the model; no classes) and ``target.json``."""
        saved.write_info(folder, info, [])
        _, values = self.split("train")
        saved.write_target(folder, {**self.objective.to_dict(), "whole_numbers": all(v % 1 == 0 for v in values)})

    def read_info(self) -> dict:
        info, _ = saved.read_info(self.ctx.run.model)
        self.target = saved.read_target(self.ctx.run.model)
        return info

    def input_info(self) -> dict:
        return {**super().input_info(), "target": self.objective.column}

    def save_centroids(self) -> None:
        """The base model's ridge head, saved where the playground finds it (regressors have no centroids)."""
        head = self.fit_base_head()
        if head is None:
            return
        features = self.features
        last = len(features.tap_names) - 1
        config = {"base_model": self.ctx.config.model, "task": self.task, "num_labels": 1,
                  "inputs": [{"kind": "tap", "index": last, "name": features.tap_names[last],
                              "dim": features.tap_dims[last]}],
                  "head": "ridge regression on the base model's frozen features (its penalty by cross-validation)",
                  **({"input_size": self.image_size} if self.image else {}),
                  **(self.encoder.describe if self.encoder is not None else {})}
        saved.save_feature_head_as(self.ctx.run.model, head, config, BASE_HEAD)

    def fit_base_head(self) -> FeatureHead | None:
        """A ridge head on the last tap of the base features, its penalty chosen by 5-fold cross-validation."""
        if self.base_head is not None:
            return self.base_head
        features = self.base_features()
        if features is None:
            return None
        _, y_train = self.split("train")
        x = features.train[-1].float()
        head = FeatureHead([x.shape[1]], 1)
        head.set_scale(x, [True])
        prepared, y = head.prepare(x), self.objective.targets(y_train)
        specs = [HeadSpec(l2=l2) for l2 in self.objective.l2_grid]
        folds = self.objective.folds(y_train, 5, self.ctx.config.train.seed, self.train_groups)

        def prepare(train_idx, test_idx):
            return prepared[train_idx], y[train_idx], None, prepared[test_idx]

        def fit(x_fold, y_fold, spec, weights):
            return self.objective.fit(x_fold, y_fold, spec, self.ctx.config.train.seed, weights)

        out = cross_val_predict(prepare, len(y_train), folds, specs, fit, self.objective.predict)
        maes = [metrics.scores(y_train, p)["mae"] if p is not None else np.inf for p in out]
        head.body = self.objective.fit(prepared, y, specs[int(np.argmin(maes))], self.ctx.config.train.seed)
        self.base_head = head.eval()
        return self.base_head

    # --- evaluation (``tuned_outputs``: each recipe's (N,) predictions on the validation split) -----------
    def evaluate(self) -> dict:
        """eval.json: the tuned model against the mean, the base model's ridge head and a classical ridge, with
        predicted-against-true points and the worst errors."""
        items, y_val = self.split("validation")
        _, y_train = self.split("train")
        where = scored_on(self.ctx.data.summary)
        self.ctx.reporter.phase("evaluating", f"Scoring the tuned model {where}.")
        predicted = self.tuned_outputs()
        tuned = metrics.scores(y_val, predicted)
        report = {"task": self.task, "strategy": self.ctx.config.strategy, "model": self.ctx.config.model,
                  "split": "validation", "examples": len(y_val), "target": self.objective.to_dict(), "tuned": tuned}
        self.ctx.reporter.phase("evaluating", "Measuring the baselines (the mean, the base model's features with a "
                                              "ridge head, a classical ridge regression).")
        described = self.baselines(y_train, y_val)
        add_to_report(report, tuned, described, ("mae", "rmse", "r2"))
        errors, grouped = metrics.error_rows(y_val, predicted), self.groups_of("validation")
        report["verdict"] = baselines.verdict(tuned, errors, described, where, grouped)
        if grouped is not None:  # how far chance moves the mean absolute error, one group's rows counted together
            report["grouped"] = {"groups": len(set(grouped)), "se": groups.mean_se(-errors, grouped)}
        report["points"] = metrics.points(y_val, predicted)
        report["worst"] = metrics.worst(items, y_val, predicted, MAX_WORST)
        report.update(self.extra_report())
        return report

    def baselines(self, y_train: list[float], y_val: list[float]) -> dict[str, Baseline]:
        """key -> ``Baseline`` for the mean, the base model's ridge head and a classical ridge."""
        def measured(predicted, title: str, description: str) -> Baseline:
            return Baseline(metrics.scores(y_val, predicted), title, description, metrics.error_rows(y_val, predicted))

        out = {"mean": measured(baselines.mean(y_train, len(y_val)), "Training mean",
                                "Always answers the training targets' mean (R² 0).")}
        head = self.fit_base_head()
        if head is not None:
            out["base"] = measured(self.objective.predict(head, self.features.validation[-1]),
                                   "Base model + ridge head (trained)",
                                   f"Ridge regression fitted on {self.ctx.config.model}'s frozen features: the "
                                   "untouched model cannot answer with a number, so this head is the least training "
                                   "that makes it.")
        train_items, _ = self.split("train")
        val_items, _ = self.split("validation")
        key, predicted, title, description = baselines.classical(self.image, train_items, y_train, val_items,
                                                                 open_image)
        # under the rule the tuned model's answers follow (kept within the training values), so neither side gains
        out[key] = measured(self.objective.within_range(predicted), title, description)
        return out

    def cleanup(self) -> None:
        self.base_head = None
        super().cleanup()

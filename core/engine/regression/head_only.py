"""Head-only regression: ridge regression on cached frozen features, the tap (images) and the penalty chosen by
cross-validation on the training rows; the validation split is kept for the report.

Ridge is fitted in closed form, so "training" takes milliseconds once the features are cached: the loss curve has
one point per penalty tried (its cross-validated error), and the validation scores come as one evaluation point.
The head is saved as a feature head (``core.saved.save_feature_head``), the format the automatic search's heads use,
so inference loads both the same way.
"""
from __future__ import annotations

import numpy as np

from ... import saved
from ...distributed import is_main_process
from ...models.heads import FeatureHead
from ..context import TrainOutcome
from ..classify.fitting import HeadSpec, cross_val_predict
from . import metrics
from .base import RegressionBase

FOLDS = 5


class RegressionHeadOnlyRecipe(RegressionBase):
    """Ridge regression on one tap of the cached frozen features."""

    head: FeatureHead | None = None
    tap: int | None = None
    tap_scores: list = []
    head_config: dict = {}

    def setup(self) -> None:
        """Load the frozen encoder and compute (or reload) the features of both splits, once."""
        if not is_main_process():
            return
        self.set_threads()
        self.base_features()

    def train(self) -> TrainOutcome:
        """Choose the tap and the penalty by cross-validation, then fit the head on every training row."""
        if not is_main_process():
            return TrainOutcome(extra={"note": "head-only trains on the main process only"})
        features = self.features
        if features is None or self.ctx.stop.is_set():
            return TrainOutcome(stopped=True, extra={"trained": False})
        _, y_train = self.split("train")
        seed = self.ctx.config.train.seed
        self.tap = self.choose_tap(y_train)
        x = features.train[self.tap].float()
        head = FeatureHead([x.shape[1]], 1)
        head.set_scale(x, [True])
        prepared, y = head.prepare(x), self.objective.targets(y_train)
        self.ctx.reporter.phase("training", f"Fitting ridge regression on {x.shape[1]} frozen features "
                                            f"({features.tap_names[self.tap]}); the penalty by {FOLDS}-fold "
                                            "cross-validation on the training rows.")
        spec = self.choose_penalty(prepared, y, y_train, seed)
        head.body = self.objective.fit(prepared, y, spec, seed)
        self.head = head.eval()
        self.head_config = {"inputs": [{"kind": "tap", "index": self.tap, "name": features.tap_names[self.tap],
                                        "dim": features.tap_dims[self.tap]}],
                            "head": self.objective.describe_head(spec)}
        scores = metrics.scores(self.split("validation")[1], self.tuned_outputs())
        self.ctx.reporter.emit("eval", step=len(self.objective.l2_grid), epoch=1.0, eval_loss=scores["rmse"],
                               **scores)
        return TrainOutcome(global_step=len(self.objective.l2_grid), extra={"tap": features.tap_names[self.tap],
                                                                              "l2": spec.l2})

    def choose_tap(self, y_train: list[float]) -> int:
        names = self.features.tap_names
        if len(names) == 1:
            return 0
        self.ctx.reporter.phase("training", f"Choosing the feature depth among {len(names)} taps (cross-validated "
                                            "R² of a ridge regression on the training split).")
        self.tap_scores = self.objective.tap_scores(self.features.train, y_train, self.ctx.config.train.seed,
                                                   self.train_groups)
        best = max(range(len(names)), key=lambda i: (self.tap_scores[i], i))  # ties go to the deeper tap
        self.ctx.reporter.line(f"Feature depth: {names[best]} (tap {best + 1} of {len(names)}) with a cross-"
                               f"validated R² of {self.tap_scores[best]:.3f} (the last layer: "
                               f"{self.tap_scores[-1]:.3f}).")
        return best

    def choose_penalty(self, prepared, y, y_train: list[float], seed: int) -> HeadSpec:
        """The ridge penalty by the one-standard-error rule over the objective's grid; one loss point each."""
        from ..classify.search import Candidate

        specs = [HeadSpec(l2=l2) for l2 in self.objective.l2_grid]
        folds = self.objective.folds(y_train, FOLDS, seed, self.train_groups)

        def prepare(train_idx, test_idx):
            return prepared[train_idx], y[train_idx], None, prepared[test_idx]

        def fit(x, y_fold, spec, weights):
            return self.objective.fit(x, y_fold, spec, seed, weights)

        predictions = cross_val_predict(prepare, len(y_train), folds, specs, fit, self.objective.predict,
                                        self.ctx.stop)
        values = np.asarray(y_train)
        candidates = []
        for step, (spec, p) in enumerate(zip(specs, predictions), start=1):
            if p is None:
                continue
            scores = self.objective.candidate_scores(values, p, values[folds[0][1]], p[folds[0][1]])
            candidates.append(Candidate(f"ridge L2 {spec.l2:g}", "head", {"l2": spec.l2}, **scores))
            self.ctx.reporter.emit("train", step=step, total_steps=len(specs), epoch=step / len(specs),
                                   loss=scores["cv_rmse"] / self.objective.std, learning_rate=spec.l2)
        if not candidates:
            return specs[len(specs) // 2]
        chosen = self.objective.choose_penalty(candidates, len(y_train))
        self.ctx.reporter.line(f"Ridge penalty {chosen.settings['l2']:g}: the strongest within one standard error "
                               f"of the best cross-validated MAE ({chosen.cv_mae:.4g}).")
        return HeadSpec(l2=chosen.settings["l2"])

    # --- saving, loading, predicting ----------------------------------------------------------------------
    def save(self) -> None:
        """head.safetensors (a feature head) + head_config.json + classifier.json + target.json + the base head."""
        if self.head is None or self.features is None:
            self.ctx.reporter.line("No head was trained, so nothing was saved.", level="warning")
            return
        folder = self.ctx.run.model
        config = {"base_model": self.ctx.config.model, "task": self.task, "num_labels": 1,
                  "tap_scores": dict(zip(self.features.tap_names, self.tap_scores)) if self.tap_scores else {},
                  **({"input_size": self.image_size} if self.image else {}), **self.encoder.describe,
                  **self.head_config}
        saved.save_feature_head(folder, self.head, config)
        self.write_info(folder, {**self.input_info(), "tap_index": self.tap})
        self.save_centroids()

    def load_trained(self) -> None:
        """Load the saved head and the base features (for ``studio eval`` without training)."""
        self.set_threads()
        info = self.read_info()
        self.head, self.head_config = saved.load_head(self.ctx.run.model)
        self.tap = int(info["tap_index"])
        self.image_size = info.get("image_size")
        self.base_features()

    def tuned_outputs(self) -> np.ndarray:
        return self.objective.predict(self.head, self.features.validation[self.tap])

    def extra_report(self) -> dict:
        names = self.features.tap_names
        return {"head": {"tap": names[self.tap], "tap_index": self.tap, "taps": len(names),
                         "description": self.head_config.get("head"),
                         "tap_r2": dict(zip(names, self.tap_scores)) if self.tap_scores else {}}}

    def cleanup(self) -> None:
        self.head = None
        super().cleanup()

"""Head-only: a linear head on cached frozen features; for images the depth (tap) is chosen by cross-validation.

Under ``accelerate launch`` with several processes it trains on the main process only: the work is seconds of
matrix products on cached features, which a second process cannot speed up.
"""
from __future__ import annotations

import numpy as np
import torch

from ... import saved
from ...distributed import is_main_process
from ...models.heads import LinearHead, head_probs
from ..context import TrainContext, TrainOutcome
from . import baselines, metrics
from .base import BaseRecipe
from .features import FeatureSet
from .head import HeadSettings, fit_head, tap_scores


class HeadOnlyRecipe(BaseRecipe):
    """A linear head on cached frozen features; for images the depth (tap) is chosen by cross-validation."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.head: LinearHead | None = None
        self.tap: int | None = None
        self.tap_scores: list[float | None] = []

    def setup(self) -> None:
        """Load the frozen encoder and compute (or reload) the features of both splits, once."""
        if not is_main_process():
            return
        self.set_threads()
        self.base_features()

    def settings(self) -> HeadSettings:
        """Epochs, learning rate and batch from the filled config (``eval_every``/``max_steps`` do not apply:
        the head is evaluated after every epoch, which costs milliseconds). A linear head on a few hundred
        examples of 100-1300 features needs some weight decay, so it gets at least 1e-2."""
        t = self.ctx.config.train
        return HeadSettings(epochs=max(1, int(round(t.epochs or 60))), learning_rate=t.learning_rate or 1e-2,
                            batch_size=t.batch_size or 64, weight_decay=max(t.weight_decay, 1e-2), seed=t.seed,
                            max_seconds=t.max_minutes * 60 if t.max_minutes else None)

    def train(self) -> TrainOutcome:
        """Choose the tap, then train the head with train/eval events; stops within one step."""
        if not is_main_process():
            return TrainOutcome(extra={"note": "head-only trains on the main process only"})
        features = self.features
        if features is None:
            return TrainOutcome(stopped=True, extra={"trained": False})
        self.tap = self.choose_tap(features)
        _, y_train = self.split("train")
        _, y_val = self.split("validation")
        settings = self.settings()
        self.ctx.reporter.phase("training", f"Training a linear head on {features.tap_dims[self.tap]} frozen "
                                            f"features for {settings.epochs} epochs.")
        head, result = fit_head(features.train[self.tap], y_train, self.n_classes, settings, self.ctx.stop,
                                on_step=self._on_step(),
                                on_epoch=self._on_epoch(features.validation[self.tap], y_val))
        self.head = head
        return TrainOutcome(stopped=result.stopped, global_step=result.steps, train_loss=result.last_loss,
                            extra={"tap": features.tap_names[self.tap], "first_loss": result.first_loss})

    def choose_tap(self, features: FeatureSet) -> int:
        last = len(features.tap_names) - 1
        if last == 0:
            return 0
        self.ctx.reporter.phase("training", f"Choosing the feature depth among {last + 1} taps "
                                            "(cross-validation on the training split).")
        _, y_train = self.split("train")
        scores = tap_scores(features.train, y_train, self.n_classes, seed=self.ctx.config.train.seed,
                            stop=self.ctx.stop, groups=self.train_groups)
        self.tap_scores = scores
        scored = [(s, i) for i, s in enumerate(scores) if s is not None]
        if not scored:
            return last
        best_score, best = max(scored, key=lambda pair: (pair[0], pair[1]))  # ties go to the deeper tap
        last_score = scores[last]
        versus = f" against {last_score:.1%} for the last layer" if last_score is not None and best != last else ""
        self.ctx.reporter.line(f"Feature depth: {features.tap_names[best]} (tap {best + 1} of {last + 1}) scored "
                               f"{best_score:.1%} in cross-validation on the training split{versus}.")
        return best

    def _on_step(self):
        every = {"n": None}

        def on_step(point: dict) -> None:
            if every["n"] is None:
                every["n"] = max(1, point["total_steps"] // 200)  # about 200 points on the loss curve
            if point["step"] % every["n"] == 0 or point["step"] == point["total_steps"]:
                self.ctx.reporter.emit("train", **point)
        return on_step

    def _on_epoch(self, val_features: torch.Tensor, y_val: list[int]):
        def on_epoch(step: int, epoch: int, head: LinearHead) -> None:
            probs = head_probs(head, val_features)
            head.train()
            self.ctx.reporter.emit("eval", step=step, epoch=epoch, eval_loss=metrics.log_loss(probs, y_val),
                                   **baselines.scores(probs, y_val, self.n_classes))
        return on_epoch

    def save(self) -> None:
        """head.safetensors + head_config.json + labels.json + classifier.json + base centroids."""
        if self.head is None or self.features is None:
            self.ctx.reporter.line("No head was trained, so nothing was saved.", level="warning")
            return
        folder = self.ctx.run.model
        head_config = {
            "base_model": self.ctx.config.model, "task": self.task, "tap_index": self.tap,
            "tap_name": self.features.tap_names[self.tap], "feature_dim": self.features.tap_dims[self.tap],
            "num_labels": self.n_classes, "tap_scores": dict(zip(self.features.tap_names, self.tap_scores)),
            **({"input_size": self.image_size} if self.task == "image-classification" else {}),
            **self.encoder.describe,
        }
        saved.save_head(folder, self.head, head_config)
        saved.write_info(folder, {**self.input_info(), "tap_index": self.tap}, self.labels)
        self.save_centroids()

    def load_trained(self) -> None:
        """Load the saved head and the base features (for ``studio eval`` without training)."""
        self.set_threads()
        head, head_config = saved.load_head(self.ctx.run.model)
        info, labels = saved.read_info(self.ctx.run.model)
        self.labels = labels
        self.head, self.tap = head, int(head_config["tap_index"])
        self.image_size = info.get("image_size")
        self.base_features()

    def tuned_probs(self) -> np.ndarray:
        return head_probs(self.head, self.features.validation[self.tap])

    def extra_report(self) -> dict:
        names = self.features.tap_names
        return {"head": {"tap": names[self.tap], "tap_index": self.tap, "taps": len(names),
                         "tap_scores": {n: s for n, s in zip(names, self.tap_scores) if s is not None}}}

    def cleanup(self) -> None:
        self.head = None
        super().cleanup()


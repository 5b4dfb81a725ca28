"""Predictions from a trained regression run, tuned or base, for the playground, the CLI and batch prediction.

``Regressor.from_run(run_dir, home)`` has the shape of ``Classifier`` (it is one, with numbers instead of classes):
``predict(item) -> float`` and ``predict_batch(items) -> (N,)``. "tuned" answers with the run's model (a head on
frozen features, or a fine-tuned model whose head outputs the target's units); "base" with the ridge head the run
fitted on the base model's frozen features (``base_head.safetensors``): a model never trained for this target
cannot answer with a number at all, so that head is the least training that lets it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .. import saved
from ..config import JobConfig
from ..models.regressors import load_regressor, predict_values, within_range
from ..runs import RunDir
from ..tasks import get_task
from .classify import WHICH, Classifier


class Regressor(Classifier):
    """A trained text or image regressor from one run folder; safe to share between threads.

    Args:
        run_dir: the run folder (holds config.yaml and model/).
        home: the studio home (where the base model is found); ``Home.resolve()`` when None.
    """

    def _read(self) -> None:
        self.config = JobConfig.load(RunDir(self.run_dir).config)
        if get_task(self.config.task).kind != "regression":
            raise ValueError(f"{self.run_dir.name} is a {self.config.task} run, not a regressor: open it with "
                             "Classifier (classifiers) or ChatModel (chat).")
        self.info, _ = saved.read_info(self.model_dir)
        self.target: dict = saved.read_target(self.model_dir)
        self.labels = []

    @property
    def target_name(self) -> str:
        return str(self.target.get("column", "target"))

    def predict(self, item: Any, which: str = "tuned") -> float:
        """The predicted number for one item.

        Args:
            item: a text (str) for text regressors; a PIL image or an image path for image regressors.
            which: "tuned" (the trained model) or "base" (a ridge head on the base model's frozen features).
        """
        return float(self.predict_batch([item], which)[0])

    def predict_batch(self, items: Sequence, which: str = "tuned") -> np.ndarray:
        """(N,) predictions for many items at once, in the batches ``studio eval`` uses for a split.

        Args:
            items: texts, or PIL images / image paths.
            which: "tuned" or "base".
        """
        if which not in WHICH:
            raise ValueError(f"which='{which}' is unknown: use 'tuned' or 'base'.")
        items = [self._check(item) for item in items]
        if not items:
            return np.zeros(0, dtype=np.float64)
        with self._lock:
            self._ensure_loaded()
            return self._tuned(items) if which == "tuned" else self._base(items)

    # --- loading ------------------------------------------------------------------------------------
    def _load_model(self):
        return load_regressor(self.model_dir, self.resolved, self.task)

    def _load_base(self) -> None:
        try:
            self._base_head, self._base_config = saved.load_head(self.model_dir, (saved.BASE_HEAD_FILE,
                                                                                  saved.BASE_HEAD_CONFIG))
        except FileNotFoundError:
            self._base_head, self._base_config = None, {}

    # --- predicting ---------------------------------------------------------------------------------
    def _within_range(self, predicted: np.ndarray) -> np.ndarray:
        """Answers kept within the training targets' range (``target.json``), as the run was chosen and scored."""
        return within_range(predicted, self.target.get("min"), self.target.get("max"))

    @torch.no_grad()
    def _tuned(self, items: list) -> np.ndarray:
        if self._head is not None:
            return self._within_range(self._head(self._head_features(items).float()).reshape(-1).numpy())
        return self._within_range(predict_values(self._model, self._inputs, items))

    @torch.no_grad()
    def _base(self, items: list) -> np.ndarray:
        if self._base_head is None:
            raise FileNotFoundError(f"{self.model_dir} has no base_head.safetensors, so the base model cannot be "
                                    "asked: retrain the run to get it.")
        tap = int(self._base_config["inputs"][0]["index"])
        return self._within_range(self._base_head(self._features(items, tap).float()).reshape(-1).numpy())

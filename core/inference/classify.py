"""Predictions from a trained classifier run, tuned or base, for the playground and the CLI.

``Classifier.from_run(run_dir, home)`` reads the run's config and model folder and loads lazily on the first
prediction. "base" answers with the untouched base model: the nearest class centroid (cosine) on its frozen
embeddings, with the centroids the run saved from its training split.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import saved
from ..config import JobConfig
from ..models.classical import classical_from_dict
from ..models.classifiers import ModelInputs, load_model, predict_probs
from ..models.encoders import load_encoder
from ..models.heads import centroid_probs, head_probs
from ..runs import RunDir
from ..strategies import get_strategy
from ..tasks import TASKS, get_task

WHICH = ("tuned", "base")


class Classifier:
    """A trained text or image classifier from one run folder; safe to share between threads.

    Args:
        run_dir: the run folder (holds config.yaml and model/).
        home: the studio home (where the base model is found); ``Home.resolve()`` when None.
    """

    def __init__(self, run_dir: Path, home=None) -> None:
        self.run_dir = Path(run_dir)
        self.home = home
        self._lock = threading.Lock()
        self._loaded = False
        self._encoder = None  # the base model's frozen encoder (head-only and base predictions)
        self._head = None
        self._head_config: dict = {}
        self._classical = None
        self._model = None
        self._inputs: ModelInputs | None = None

    @classmethod
    def from_run(cls, run_dir: Path, home=None) -> "Classifier":
        """A classifier for ``run_dir`` (nothing is loaded until the first prediction).

        Args:
            run_dir: the run folder.
            home: the studio home; ``Home.resolve()`` when None.
        """
        run_dir = Path(run_dir)
        if not RunDir(run_dir).config.is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (it has no config.yaml): pick a run from "
                                    "`studio runs`.")
        classifier = cls(run_dir, home)
        classifier._read()
        return classifier

    load = from_run

    def _read(self) -> None:
        self.config = JobConfig.load(RunDir(self.run_dir).config)
        kind = get_task(self.config.task).kind if self.config.task in TASKS else ""
        if kind != "classification":
            where = "with core.inference.regress.Regressor" if kind == "regression" else "in the chat playground"
            raise ValueError(f"{self.run_dir.name} is a {self.config.task} run, not a classifier: open it {where}.")
        self.info, self.labels = saved.read_info(self.model_dir)

    @property
    def model_dir(self) -> Path:
        return RunDir(self.run_dir).model

    @property
    def task(self) -> str:
        return self.config.task

    def predict(self, item: Any, which: str = "tuned") -> list[tuple[str, float]]:
        """Every class with its probability, most likely first.

        Args:
            item: a text (str) for text classifiers; a PIL image or an image path for image classifiers.
            which: "tuned" (the trained model) or "base" (the base model's nearest class centroid).
        """
        if which not in WHICH:
            raise ValueError(f"which='{which}' is unknown: use 'tuned' or 'base'.")
        item = self._check(item)
        with self._lock:
            self._ensure_loaded()
            probs = (self._tuned if which == "tuned" else self._base)([item])[0]
        order = np.argsort(-probs, kind="stable")
        return [(self.labels[i], float(probs[i])) for i in order]

    def predict_batch(self, items: Sequence, which: str = "tuned") -> np.ndarray:
        """(N, C) probabilities for many items at once, columns in ``labels`` order (batch prediction, the API).

        Items go through the model in the batches ``studio eval`` uses for a split (the frozen encoder's batches
        for head-only models, 32 per pass for fine-tuned ones), so the same list gives the same numbers.

        Args:
            items: texts, or PIL images / image paths.
            which: "tuned" or "base".
        """
        if which not in WHICH:
            raise ValueError(f"which='{which}' is unknown: use 'tuned' or 'base'.")
        items = [self._check(item) for item in items]
        if not items:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        with self._lock:
            self._ensure_loaded()
            return self._tuned(items) if which == "tuned" else self._base(items)

    def _check(self, item: Any) -> Any:
        if get_task(self.task).modality == "text":
            if not isinstance(item, str) or not item.strip():
                raise ValueError("give some text to classify.")
            return item
        from PIL import Image

        if isinstance(item, Image.Image):
            return item
        if isinstance(item, (str, Path)) and Path(item).is_file():
            return str(item)
        raise ValueError("give an image (a picture, or the path of an image file) to classify.")

    # --- loading ------------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        from ..home import Home
        from ..models import resolve_model

        self.home = self.home or Home.resolve()
        self.resolved = resolve_model(self.config.model, self.home, task=self.task)
        if get_strategy(self.info["strategy"]).on_features:
            self._head, self._head_config = saved.load_head(self.model_dir)
            state = self._head_config.get("classical")
            self._classical = classical_from_dict(state) if state is not None else None
        else:
            self._model = self._load_model()
            self._inputs = self._model_inputs()
        self._load_base()
        self._loaded = True

    def _load_model(self):
        """The fine-tuned model the run saved."""
        return load_model(self.model_dir, self.resolved, self.task, self.labels)

    def _load_base(self) -> None:
        """What answers for the base model: the class centroids of its embeddings."""
        self._centroids, self._centroid_meta = saved.read_centroids(self.model_dir)

    def _model_inputs(self) -> ModelInputs:
        if get_task(self.task).modality == "text":
            from transformers import AutoTokenizer
            source = self.model_dir if (self.model_dir / "tokenizer_config.json").is_file() else self.resolved.path
            return ModelInputs(self.task, tokenizer=AutoTokenizer.from_pretrained(source),
                               max_length=self.info.get("max_length", 256))
        return ModelInputs(self.task, image_size=self.info["image_size"], mean=self.info["mean"],
                           std=self.info["std"], interpolate=bool(self.info.get("interpolate")))

    def _base_encoder(self):
        if self._encoder is None:
            self._encoder = load_encoder(self.resolved, self.task, image_size=self.info.get("image_size"),
                                         max_length=self.info.get("max_length"))
        return self._encoder

    # --- predicting ---------------------------------------------------------------------------------
    def _tuned(self, items: list) -> np.ndarray:
        if self._head is not None:
            return head_probs(self._head, self._head_features(items))
        return predict_probs(self._model, self._inputs, items)

    def _head_features(self, items: list) -> torch.Tensor:
        """What the saved head reads: one tap (head-only), or its taps and classical features in order (a head
        the automatic search chose)."""
        inputs = self._head_config.get("inputs")
        if inputs is None:
            return self._features(items, int(self.info["tap_index"]))
        encoder = self._base_encoder()
        step = encoder.batch_size
        taps = [encoder.encode(items[i:i + step]) for i in range(0, len(items), step)]
        blocks = [torch.cat([t[int(spec["index"])] for t in taps]).float() if spec["kind"] == "tap"
                  else self._classical.transform(items) for spec in inputs]
        return torch.cat(blocks, dim=1)

    def _base(self, items: list) -> np.ndarray:
        if self._centroids is None:
            raise FileNotFoundError(f"{self.model_dir} has no base_centroids.safetensors, so the base model "
                                    "cannot be asked: retrain the run to get it.")
        encoder = self._base_encoder()
        tap = int(self._centroid_meta.get("tap_index", len(encoder.tap_names) - 1))
        return centroid_probs(self._centroids, self._features(items, tap),
                              float(self._centroid_meta.get("scale", 20.0)))

    def _features(self, items: list, tap: int) -> torch.Tensor:
        """The frozen encoder's features at ``tap``, computed in its own batches (as training cached them)."""
        encoder = self._base_encoder()
        step = encoder.batch_size
        return torch.cat([encoder.encode(items[i:i + step])[tap] for i in range(0, len(items), step)])

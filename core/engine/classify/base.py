"""What every classifier recipe shares: data access, the base model's cached features, the base centroids and
the evaluation against real baselines.

Every recipe computes the base model's frozen features once (``features.safetensors`` in the run folder): the
head-only recipe trains on them, and all recipes use them for the "before" figures (nearest class centroid
on the base embeddings) and save the class centroids so the playground can answer "what would the base
model say".
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ... import saved
from ...distributed import is_main_process
from ...data import groups
from ...data.overview import scored_on
from ...heap import release_memory
from ...tasks import get_task
from ...models import heads
from ...models.encoders import load_encoder, open_image
from ..context import TrainContext
from . import baselines, metrics
from .features import FEATURES_FILE, FeatureSet, choose_image_size, compute, fingerprint

MAX_MISTAKES = 30


class BaseRecipe:
    """What every classifier recipe shares: data access, base features, centroids and the evaluation."""

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.task = ctx.config.task
        self.image = get_task(self.task).modality == "image"
        self.column = "image" if self.image else "text"
        self.objective = self.make_objective()
        self.labels: list[str] = list(getattr(self.objective, "labels", []))
        self.features: FeatureSet | None = None
        self.encoder = None
        self.image_size: int | None = None

    def make_objective(self):
        """What the heads and fine-tunes predict: the data's classes (at least two)."""
        from .objective import Classification

        labels = list(self.ctx.data.labels or [])
        if len(labels) < 2:
            raise ValueError(f"the data has {len(labels)} class(es): a classifier needs at least 2 classes "
                             "with examples; add examples of another class.")
        return Classification(labels)

    # --- data ---------------------------------------------------------------------------------------
    def split(self, name: str) -> tuple[list, list[int]]:
        dataset = getattr(self.ctx.data, name)
        if dataset is None or len(dataset) == 0:
            raise ValueError(f"the {name} split is empty: give more data or a larger validation fraction.")
        return list(dataset[self.column]), [int(v) for v in dataset["label"]]

    @property
    def train_groups(self) -> list[str] | None:
        """The group of each training row (the data's group column), or None: the search's folds keep each
        group in one fold (``core.data.groups``)."""
        return self.groups_of("train")

    def groups_of(self, name: str) -> list[str] | None:
        """The group of each row of a split, or None when the data has no groups."""
        dataset = getattr(self.ctx.data, name)
        if dataset is None or groups.ROLE not in dataset.column_names:
            return None
        return list(dataset[groups.ROLE])

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def set_threads(self) -> None:
        hardware = self.ctx.hardware
        threads = self.ctx.config.train.threads or (hardware.train_threads if hardware is not None else None)
        if threads:
            torch.set_num_threads(int(threads))

    # --- base features --------------------------------------------------------------------------------
    def choose_size(self, native: int) -> int:
        paths, _ = self.split("train")
        return choose_image_size(paths, native)

    def load_base_encoder(self):
        """The base model's frozen encoder; for images at an input size chosen from the data."""
        if self.encoder is None:
            self.ctx.reporter.phase("loading", f"Loading {self.ctx.config.model} as a frozen feature extractor.")
            encoder = load_encoder(self.ctx.model, self.task, max_length=self.ctx.config.train.max_length)
            if self.image:
                self.image_size = self.image_size or self.choose_size(encoder.backbone.image_size)
                encoder.image_size = self.image_size
            self.encoder = encoder
        return self.encoder

    def base_features(self) -> FeatureSet:
        """Train and validation features at every tap: from the run's cache when it matches, else computed."""
        if self.features is not None:
            return self.features
        encoder = self.load_base_encoder()
        splits = {name: self.split(name) for name in ("train", "validation")}
        key = fingerprint(self.ctx.config.model, encoder.describe, splits)
        path = self.ctx.run.path / FEATURES_FILE
        cached = FeatureSet.load(path, key)
        if cached is not None:
            self.ctx.reporter.line(f"Using the features cached in {FEATURES_FILE} (same model and data).")
            self.features = cached
            return cached
        computed = {}
        started = time.perf_counter()
        for name, (items, _) in splits.items():
            computed[name] = compute(encoder, items, self._caching_progress(name), self.ctx.stop)
            if computed[name] is None:
                return None  # stopped: nothing half-done is kept
        features = FeatureSet(list(encoder.tap_names), computed["train"], computed["validation"])
        self.ctx.reporter.line(f"Computed features of {sum(len(i) for i, _ in splits.values())} examples in "
                               f"{time.perf_counter() - started:.1f} s; later epochs reuse them.")
        if is_main_process():
            features.save(path, key)
        self.features = features
        return features

    def _caching_progress(self, split: str):
        what = "images" if self.image else "texts"

        def progress(done: int, total: int) -> None:
            self.ctx.reporter.phase("caching", f"Computing frozen features of the {split} {what}: {done}/{total}",
                                    current=done, total=total)
        return progress

    def save_centroids(self) -> None:
        """``base_centroids.safetensors``: each class's mean base embedding (the last tap), for base predictions."""
        features = self.base_features()
        if features is None:
            return
        _, labels = self.split("train")
        last = len(features.tap_names) - 1
        centroids = heads.class_centroids(features.train[last], labels, self.n_classes)
        saved.save_centroids(self.ctx.run.model, centroids, features.tap_names[last], last)

    def input_info(self) -> dict:
        info = {"task": self.task, "strategy": self.ctx.config.strategy, "base_model": self.ctx.config.model,
                "model_kind": self.ctx.model.kind, "labels": self.labels}
        if self.image:
            info["image_size"] = self.image_size
        else:
            info["max_length"] = self.ctx.config.train.max_length or 256
        return info

    def write_info(self, folder, info: dict) -> None:
        """``classifier.json`` and ``labels.json`` beside the saved model."""
        saved.write_info(folder, info, self.labels)

    def read_info(self) -> dict:
        """The saved model's ``classifier.json``; the classes come back from ``labels.json``."""
        from .objective import Classification

        info, labels = saved.read_info(self.ctx.run.model)
        self.labels, self.objective = labels, Classification(labels)
        return info

    # --- evaluation -----------------------------------------------------------------------------------
    def tuned_probs(self) -> np.ndarray:
        """(N, C) probabilities of the tuned model on the validation split."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        """eval.json: the tuned model and three real baselines on the validation split, with deltas."""
        items, y_val = self.split("validation")
        _, y_train = self.split("train")
        where = scored_on(self.ctx.data.summary)
        self.ctx.reporter.phase("evaluating", f"Scoring the tuned model {where}.")
        probs = self.tuned_probs()
        tuned = {**baselines.scores(probs, y_val, self.n_classes), "eval_loss": metrics.log_loss(probs, y_val)}
        report = {
            "task": self.task, "strategy": self.ctx.config.strategy, "model": self.ctx.config.model,
            "split": "validation", "examples": len(y_val), "labels": self.labels, "tuned": tuned,
        }
        self.ctx.reporter.phase("evaluating", "Measuring the baselines (majority class, base model, classical).")
        described = self.baselines(y_train, y_val)
        baselines.add_to_report(report, tuned, described, ("accuracy", "macro_f1"))
        right, grouped = baselines.right_rows(probs, y_val), self.groups_of("validation")
        report["verdict"] = baselines.verdict(tuned, right, described, where, grouped)
        if grouped is not None:  # how far chance moves the accuracy, the rows of one group counted together
            report["grouped"] = {"groups": len(set(grouped)), "se": groups.mean_se(right, grouped)}
        pred = probs.argmax(axis=1)
        report["per_class"] = metrics.per_class(y_val, pred, self.labels)
        report["confusion_matrix"] = metrics.confusion(y_val, pred, self.labels)
        report["misclassified"] = metrics.mistakes(items, y_val, probs, self.labels, MAX_MISTAKES)
        report.update(self.extra_report())
        return report

    def extra_report(self) -> dict:
        return {}

    def baselines(self, y_train: list[int], y_val: list[int]) -> dict[str, baselines.Baseline]:
        """key -> ``Baseline`` for the majority, base-model and classical baselines."""
        n = self.n_classes
        out = {"majority": self._baseline(baselines.majority(y_train, n, len(y_val)), y_val, "Majority class",
                                          "Always answers the most frequent training class.")}
        features = self.base_features()
        if features is not None:
            centroids = heads.class_centroids(features.train[-1], y_train, n)
            out["base"] = self._baseline(heads.centroid_probs(centroids, features.validation[-1]), y_val,
                                         "Base model (no training)", "Nearest class centroid on "
                                         f"{self.ctx.config.model}'s frozen embeddings (cosine).")
        out.update(self.classical(y_train, y_val))
        return out

    def _baseline(self, probs: np.ndarray, y_val: list[int], title: str, description: str) -> baselines.Baseline:
        return baselines.Baseline(baselines.scores(probs, y_val, self.n_classes), title, description,
                                  baselines.right_rows(probs, y_val))

    def classical(self, y_train: list[int], y_val: list[int]) -> dict[str, baselines.Baseline]:
        train_items, _ = self.split("train")
        val_items, _ = self.split("validation")
        n, seed = self.n_classes, self.ctx.config.train.seed
        if not self.image:
            probs = baselines.tfidf_logreg(train_items, y_train, val_items, n, seed)
            return {"tfidf_logreg": self._baseline(probs, y_val, "TF-IDF + logistic regression",
                                                   "Word and word-pair counts, no neural network.")}
        size = baselines.PIXEL_SIZE
        probs = baselines.pixel_logreg(baselines.image_pixels(train_items, open_image, size), y_train,
                                       baselines.image_pixels(val_items, open_image, size), n, seed)
        return {"pixel_logreg": self._baseline(probs, y_val, "Raw-pixel logistic regression",
                                               f"Logistic regression on the {size}x{size} pixels, no neural network.")}

    def cleanup(self) -> None:
        """Free the models and features (the job manager runs many jobs in one process)."""
        self.encoder = None
        self.features = None
        release_memory()


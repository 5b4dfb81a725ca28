"""Text and image classifiers: head-only, LoRA and full fine-tuning, evaluated against real baselines.

``ClassifierRecipe(ctx)`` picks the recipe for the job's strategy; the runner calls ``setup``, ``train``,
``save``, ``evaluate`` and ``cleanup`` (or ``load_trained`` instead of setup + train, for ``studio eval``).

Every recipe computes the base model's frozen features once (``features.safetensors`` in the run folder): the
head-only recipe trains on them, and all recipes use them for the "before" figures (nearest class centroid
on the base embeddings) and save the class centroids so the playground can answer "what would the base
model say".

Head-only under ``accelerate launch`` with several processes trains on the main process only: the work is
seconds of matrix products on cached features, which a second process cannot speed up.
"""
from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from . import classify_baselines as baselines
from . import classify_metrics as metrics
from .classify_features import FeatureSet, choose_image_size, compute, fingerprint, load_encoder
from .classify_head import HeadSettings, LinearHead, fit_head, head_probs, tap_scores
from .classify_models import read_info, write_info
from .context import TrainContext, TrainOutcome

FEATURES_FILE = "features.safetensors"
CENTROIDS_FILE = "base_centroids.safetensors"
HEAD_FILE = "head.safetensors"
HEAD_CONFIG = "head_config.json"
MAX_MISTAKES = 30


def ClassifierRecipe(ctx: TrainContext):
    """The recipe for ``ctx.config.strategy``: ``HeadOnlyRecipe`` or ``FineTuneRecipe`` (lora, full)."""
    if ctx.config.task not in ("text-classification", "image-classification"):
        raise ValueError(f"task '{ctx.config.task}' is not a classification task: use text-classification or "
                         "image-classification.")
    if ctx.config.strategy == "head-only":
        return HeadOnlyRecipe(ctx)
    from .classify_finetune import FineTuneRecipe
    return FineTuneRecipe(ctx)


def train(ctx: TrainContext) -> TrainOutcome:
    """Set up, train and save a classifier for ``ctx`` (the recipe without the runner around it)."""
    recipe = ClassifierRecipe(ctx)
    try:
        recipe.setup()
        outcome = recipe.train()
        if is_main_process():
            recipe.save()
        return outcome
    finally:
        recipe.cleanup()


def evaluate(ctx: TrainContext) -> dict:
    """eval.json content for the model trained in ``ctx.run`` (loads it from the run's model folder)."""
    recipe = ClassifierRecipe(ctx)
    try:
        recipe.load_trained()
        return recipe.evaluate()
    finally:
        recipe.cleanup()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class BaseRecipe:
    """What every classifier recipe shares: data access, base features, centroids and the evaluation."""

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.task = ctx.config.task
        self.labels: list[str] = list(ctx.data.labels or [])
        if len(self.labels) < 2:
            raise ValueError(f"the data has {len(self.labels)} class(es): a classifier needs at least 2 classes "
                             "with examples; add examples of another class.")
        self.column = "image" if self.task == "image-classification" else "text"
        self.features: FeatureSet | None = None
        self.encoder = None
        self.image_size: int | None = None

    # --- data ---------------------------------------------------------------------------------------
    def split(self, name: str) -> tuple[list, list[int]]:
        dataset = getattr(self.ctx.data, name)
        if dataset is None or len(dataset) == 0:
            raise ValueError(f"the {name} split is empty: give more data or a larger validation fraction.")
        return list(dataset[self.column]), [int(v) for v in dataset["label"]]

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
            if self.task == "image-classification":
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
        what = "images" if self.task == "image-classification" else "texts"

        def progress(done: int, total: int) -> None:
            self.ctx.reporter.phase("caching", f"Computing frozen features of the {split} {what}: {done}/{total}",
                                    current=done, total=total)
        return progress

    def save_centroids(self) -> None:
        """``base_centroids.safetensors``: each class's mean base embedding (the last tap), for base predictions."""
        from safetensors.torch import save_file

        features = self.base_features()
        if features is None:
            return
        _, labels = self.split("train")
        centroids = baselines.class_centroids(features.train[-1], labels, self.n_classes)
        meta = {"tap": features.tap_names[-1], "tap_index": str(len(features.tap_names) - 1),
                "scale": str(baselines.CENTROID_SCALE)}
        self.ctx.run.model.mkdir(parents=True, exist_ok=True)
        save_file({"centroids": centroids}, str(self.ctx.run.model / CENTROIDS_FILE), metadata=meta)

    def input_info(self) -> dict:
        info = {"task": self.task, "strategy": self.ctx.config.strategy, "base_model": self.ctx.config.model,
                "model_kind": self.ctx.model.kind, "labels": self.labels}
        if self.task == "image-classification":
            info["image_size"] = self.image_size
        else:
            info["max_length"] = self.ctx.config.train.max_length or 256
        return info

    # --- evaluation -----------------------------------------------------------------------------------
    def tuned_probs(self) -> np.ndarray:
        """(N, C) probabilities of the tuned model on the validation split."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        """eval.json: the tuned model and three real baselines on the validation split, with deltas."""
        items, y_val = self.split("validation")
        _, y_train = self.split("train")
        self.ctx.reporter.phase("evaluating", "Scoring the tuned model on the validation split.")
        probs = self.tuned_probs()
        tuned = {**baselines.scores(probs, y_val, self.n_classes), "eval_loss": metrics.log_loss(probs, y_val)}
        report = {
            "task": self.task, "strategy": self.ctx.config.strategy, "model": self.ctx.config.model,
            "split": "validation", "examples": len(y_val), "labels": self.labels, "tuned": tuned,
        }
        self.ctx.reporter.phase("evaluating", "Measuring the baselines (majority class, base model, classical).")
        described = self.baselines(y_train, y_val)
        for key, (scores, _, _) in described.items():
            report[key] = scores
        report["baselines"] = [{"key": k, "title": t, "description": d} for k, (_, t, d) in described.items()]
        report["deltas"] = {k: {m: tuned[m] - s[m] for m in ("accuracy", "macro_f1")}
                            for k, (s, _, _) in described.items()}
        pred = probs.argmax(axis=1)
        report["per_class"] = metrics.per_class(y_val, pred, self.labels)
        report["confusion_matrix"] = metrics.confusion(y_val, pred, self.labels)
        report["misclassified"] = metrics.mistakes(items, y_val, probs, self.labels, MAX_MISTAKES)
        report.update(self.extra_report())
        return report

    def extra_report(self) -> dict:
        return {}

    def baselines(self, y_train: list[int], y_val: list[int]) -> dict[str, tuple[dict, str, str]]:
        """key -> (scores, title, description) for the majority, base-model and classical baselines."""
        n = self.n_classes
        out = {"majority": (baselines.scores(baselines.majority(y_train, n, len(y_val)), y_val, n),
                            "Majority class", "Always answers the most frequent training class.")}
        features = self.base_features()
        if features is not None:
            centroids = baselines.class_centroids(features.train[-1], y_train, n)
            probs = baselines.centroid_probs(centroids, features.validation[-1])
            out["base"] = (baselines.scores(probs, y_val, n), "Base model (no training)",
                           f"Nearest class centroid on {self.ctx.config.model}'s frozen embeddings (cosine).")
        out.update(self.classical(y_train, y_val))
        return out

    def classical(self, y_train: list[int], y_val: list[int]) -> dict[str, tuple[dict, str, str]]:
        train_items, _ = self.split("train")
        val_items, _ = self.split("validation")
        n, seed = self.n_classes, self.ctx.config.train.seed
        if self.task == "text-classification":
            probs = baselines.tfidf_logreg(train_items, y_train, val_items, n, seed)
            return {"tfidf_logreg": (baselines.scores(probs, y_val, n), "TF-IDF + logistic regression",
                                     "Word and word-pair counts, no neural network.")}
        from .classify_features import open_image
        size = baselines.PIXEL_SIZE
        probs = baselines.pixel_logreg(baselines.image_pixels(train_items, open_image, size), y_train,
                                       baselines.image_pixels(val_items, open_image, size), n, seed)
        return {"pixel_logreg": (baselines.scores(probs, y_val, n), "Raw-pixel logistic regression",
                                 f"Logistic regression on the {size}x{size} pixels, no neural network.")}

    def cleanup(self) -> None:
        """Free the models and features (the job manager runs many jobs in one process)."""
        self.encoder = None
        self.features = None
        gc.collect()


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
                            stop=self.ctx.stop)
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
        from safetensors.torch import save_file

        folder = self.ctx.run.model
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / HEAD_FILE))
        head_config = {
            "base_model": self.ctx.config.model, "task": self.task, "tap_index": self.tap,
            "tap_name": self.features.tap_names[self.tap], "feature_dim": self.features.tap_dims[self.tap],
            "num_labels": self.n_classes, "tap_scores": dict(zip(self.features.tap_names, self.tap_scores)),
            **({"input_size": self.image_size} if self.task == "image-classification" else {}),
            **self.encoder.describe,
        }
        (folder / HEAD_CONFIG).write_text(json.dumps(head_config, indent=1), encoding="utf-8")
        write_info(folder, {**self.input_info(), "tap_index": self.tap}, self.labels)
        self.save_centroids()

    def load_trained(self) -> None:
        """Load the saved head and the base features (for ``studio eval`` without training)."""
        self.set_threads()
        head, head_config = load_head(self.ctx.run.model)
        info, labels = read_info(self.ctx.run.model)
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


def load_head(folder: Path) -> tuple[LinearHead, dict]:
    """The trained head and its head_config.json from a run's model folder."""
    from safetensors.torch import load_file

    config_path = folder / HEAD_CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no {HEAD_CONFIG}: this run did not save a trained head.")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    head = LinearHead(int(config["feature_dim"]), int(config["num_labels"]))
    head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    return head.eval(), config

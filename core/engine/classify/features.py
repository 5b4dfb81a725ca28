"""The frozen features of a run's data, computed once and cached in the run folder.

A text encoder gives one feature vector per text (mean-pooled tokens); an image backbone gives one per depth
("tap") from a single forward pass (``core.models.encoders``). The run folder keeps them in
``features.safetensors`` with a fingerprint of the model and the data, so a resumed or re-evaluated run skips
the slow part.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ...models.encoders import FrozenEncoder

Progress = Callable[[int, int], None]
FEATURES_FILE = "features.safetensors"


def compute(encoder: FrozenEncoder, items: Sequence, progress: Progress | None = None,
            stop: threading.Event | None = None) -> list[torch.Tensor] | None:
    """Features of ``items`` at every tap, in batches; None when ``stop`` was set before the end.

    Args:
        encoder: from ``load_encoder``.
        items: texts or image paths, in dataset order.
        progress: called with (done, total) after each batch.
        stop: checked between batches.
    """
    parts: list[list[torch.Tensor]] = []
    total = len(items)
    for start in range(0, total, encoder.batch_size):
        if stop is not None and stop.is_set():
            return None
        parts.append(encoder.encode(items[start:start + encoder.batch_size]))
        if progress is not None:
            progress(min(total, start + encoder.batch_size), total)
    if not parts:
        raise ValueError("there are no examples to compute features for: the split is empty.")
    return [torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))]


# --- the cache ------------------------------------------------------------------------------------
@dataclass
class FeatureSet:
    """Cached features: one tensor per tap for each split."""

    tap_names: list[str]
    train: list[torch.Tensor]
    validation: list[torch.Tensor]

    @property
    def tap_dims(self) -> list[int]:
        return [int(t.shape[1]) for t in self.train]

    def save(self, path: Path, fingerprint: str) -> None:
        """Write ``features.safetensors``; written to a temporary name first so a crash leaves no half file."""
        from safetensors.torch import save_file

        tensors = {f"{split}.{i}": t.contiguous() for split, taps in
                   (("train", self.train), ("validation", self.validation)) for i, t in enumerate(taps)}
        meta = {"fingerprint": fingerprint, "tap_names": json.dumps(self.tap_names)}
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> "FeatureSet | None":
        """The cached features when ``path`` holds features for exactly this model and data, else None."""
        from safetensors import safe_open

        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                if meta.get("fingerprint") != fingerprint:
                    return None
                names = json.loads(meta["tap_names"])
                train = [handle.get_tensor(f"train.{i}") for i in range(len(names))]
                validation = [handle.get_tensor(f"validation.{i}") for i in range(len(names))]
        except Exception:  # a damaged cache is recomputed rather than trusted
            return None
        return cls(names, train, validation)


def fingerprint(model_name: str, settings: dict, splits: dict[str, tuple[Sequence, Sequence]]) -> str:
    """A hash of the model, its input settings and every example and label, naming one set of features.

    Args:
        model_name: the base model as configured.
        settings: the encoder's ``describe``.
        splits: split name -> (items, labels).
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([model_name, settings], sort_keys=True).encode())
    for name in sorted(splits):
        items, labels = splits[name]
        digest.update(name.encode())
        for item, label in zip(items, labels):
            digest.update(f"{item}\x00{label}\x01".encode())
    return digest.hexdigest()


# --- choosing the image size ----------------------------------------------------------------------
def typical_side(paths: Sequence[str], sample: int = 32) -> int | None:
    """The median longer side of up to ``sample`` images (PIL reads headers only), None when none opens."""
    from PIL import Image

    step = max(1, len(paths) // sample)
    sides = []
    for path in list(paths)[::step][:sample]:
        try:
            with Image.open(path) as image:
                sides.append(max(image.size))
        except Exception:  # unreadable files were reported by the data checks; size them from the rest
            continue
    return int(statistics.median(sides)) if sides else None


def choose_image_size(paths: Sequence[str], native: int) -> int:
    """The input side for these images: twice their typical side, rounded up to 32, within [64, native].

    Small images gain nothing from being blown up to the backbone's training size, which costs ~10x the
    time (FACTS: 32 px digits at 64 px give the best head, at 224 px the same for 10x the time).

    Args:
        paths: image files of the training split.
        native: the backbone's training size (the cap).
    """
    side = typical_side(paths)
    if side is None:
        return native
    return int(min(native, max(64, math.ceil(2 * side / 32) * 32)))

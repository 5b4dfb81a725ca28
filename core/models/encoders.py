"""Frozen feature encoders: one interface for texts and images, giving one feature vector per item at every
depth ("tap"). Training caches their features (``core.engine.classify.features``); the playground and batch
prediction run them on new items for head-only models and for the base model's answer.
"""
from __future__ import annotations

from typing import Sequence

import torch


class FrozenEncoder:
    """Turns a batch of items (texts, image paths or PIL images) into features at every tap."""

    tap_names: list[str]
    batch_size: int = 64

    def encode(self, items: Sequence) -> list[torch.Tensor]:
        """One (B, D_i) tensor per tap for the batch ``items``."""
        raise NotImplementedError

    @property
    def describe(self) -> dict:
        """What identifies these features (model input settings), for caches and saved heads."""
        raise NotImplementedError


class TextFeatures(FrozenEncoder):
    """Mean-pooled text embeddings (one tap).

    Args:
        encoder: a ``core.models.backbones.TextEncoder``.
        max_length: texts are truncated to this many tokens.
    """

    def __init__(self, encoder, max_length: int = 256) -> None:
        self.encoder = encoder
        self.max_length = int(max_length)
        self.tap_names = ["mean-pooled"]

    batch_size = 256  # texts per progress step; the encoder sorts them by length into forward passes of 64

    def encode(self, items: Sequence) -> list[torch.Tensor]:
        return [self.encoder.embed([str(t) for t in items], batch_size=64, max_length=self.max_length)]

    @property
    def describe(self) -> dict:
        return {"pooling": "mean", "max_length": self.max_length}


class ImageFeatures(FrozenEncoder):
    """Pooled image features at every depth of a backbone, from one forward pass per batch.

    Args:
        backbone: a ``core.models.backbones.ImageBackbone``.
        image_size: the side the images are resized to.
    """

    batch_size = 32

    def __init__(self, backbone, image_size: int) -> None:
        self.backbone = backbone
        self.image_size = int(image_size)
        self.tap_names = list(backbone.tap_names)

    @torch.no_grad()
    def encode(self, items: Sequence) -> list[torch.Tensor]:
        images = [open_image(item) for item in items]
        return [t.float() for t in self.backbone(self.backbone.preprocess(images, size=self.image_size))]

    @property
    def describe(self) -> dict:
        return {"pooling": "global average per tap", "image_size": self.image_size}


def open_image(item):
    """A PIL RGB image from a path or a PIL image (the data module's converter handles odd modes)."""
    from PIL import Image

    from ..data.images import open_rgb, to_rgb

    if isinstance(item, Image.Image):
        return to_rgb(item)
    return open_rgb(item)


def load_encoder(resolved, task: str, *, image_size: int | None = None, max_length: int | None = None
                 ) -> FrozenEncoder:
    """The frozen feature encoder of a base model.

    Args:
        resolved: a ``core.models.ResolvedModel``.
        task: the job's task; its modality (text or image) picks the encoder.
        image_size: input side for images (None: the backbone's own size).
        max_length: token limit for texts (None: 256).
    """
    from ..tasks import get_task
    from .backbones import load_image_backbone, load_text_encoder

    if get_task(task).modality == "image":
        backbone = load_image_backbone(resolved)
        return ImageFeatures(backbone, image_size or backbone.image_size)
    return TextFeatures(load_text_encoder(resolved), max_length or 256)

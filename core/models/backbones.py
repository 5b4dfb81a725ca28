"""Frozen feature extractors for head-only training: image backbones with pooled features at every depth,
and a mean-pooling text encoder.

Every ``ImageBackbone`` returns, from ONE forward pass, the globally pooled features after each stage
("taps"). The classifier engine fits a head on each tap's cached features and keeps the one that does best
on the validation split: for images unlike ImageNet a middle block beats the last layer (FACTS: block 8 of
EfficientNet-Lite0 gives 0.93 on small digits against 0.85 from the head).
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
from torch import nn

from ..stack import load as load_stack
from .base import ModelUnavailable, ResolvedModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (pixel - 127) / 128.
LITE_MEAN = (0.498, 0.498, 0.498)
LITE_STD = (0.502, 0.502, 0.502)


def preprocess_images(images: list, size: int, mean, std) -> torch.Tensor:
    """PIL images -> a normalised float tensor (B, 3, size, size): RGB, bilinear resize, (x - mean) / std."""
    from PIL import Image

    if not images:
        raise ValueError("no images to preprocess: give at least one PIL image.")
    arrays = []
    for image in images:
        image = image.convert("RGB").resize((size, size), Image.BILINEAR)
        arrays.append(torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(size, size, 3))
    batch = torch.stack(arrays).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t


class ImageBackbone(nn.Module):
    """A frozen image network whose forward returns pooled features at every tap.

    Attributes:
        image_size: the input size the network was trained at (callers may choose smaller).
        tap_names: one name per tap, shallow to deep.
        tap_dims: the feature width of each tap.
    """

    image_size: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __init__(self):
        super().__init__()
        self.tap_names: list[str] = []
        self.tap_dims: list[int] = []

    def preprocess(self, images: list, size: int | None = None) -> torch.Tensor:
        """PIL images -> pixel values for ``forward``, resized to ``size`` (default ``image_size``)."""
        return preprocess_images(images, size or self.image_size, self.mean, self.std)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Pooled features at every tap: a list of (B, tap_dims[i]) tensors."""
        raise NotImplementedError

    def tap_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The same as calling the module (the name ARCHITECTURE.md uses)."""
        return self(pixel_values)

    def _measure_taps(self) -> None:
        with torch.no_grad():
            taps = self(torch.zeros(1, 3, self.image_size, self.image_size))
        self.tap_dims = [int(t.shape[-1]) for t in taps]


# --- EfficientNet-Lite0 ---------------------------------------------------------------------------
def _load_efficientnet(resolved: ResolvedModel, num_classes: int = 1000) -> nn.Module:
    """The EfficientNet-Lite0 network with the packaged ImageNet weights, loaded with weights_only=True
    (the package's own ``from_pretrained`` calls ``torch.load`` without it, and prints)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelUnavailable("EfficientNet-Lite0 needs its code package: `pip install "
                               "efficientnet-lite-pytorch==0.1.0`.") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(resolved.path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    if num_classes != 1000:
        net._fc = nn.Linear(net._fc.in_features, num_classes)
    return net


class EfficientNetBackbone(ImageBackbone):
    """EfficientNet-Lite0 with a tap after each of its 16 blocks and after the head conv + BN (17 taps)."""

    image_size = 224
    mean = LITE_MEAN
    std = LITE_STD

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.tap_names = [f"block{i}" for i in range(len(net._blocks))] + ["head"]
        self._measure_taps()

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixel_values)))
        taps = []
        rate = net._global_params.drop_connect_rate or 0.0
        for index, block in enumerate(net._blocks):
            # the same per-block drop-connect schedule as the package (inactive in eval mode)
            x = block(x, drop_connect_rate=rate * index / len(net._blocks))
            taps.append(x.mean(dim=(2, 3)))
        x = net._swish(net._bn1(net._conv_head(x)))
        taps.append(x.mean(dim=(2, 3)))
        return taps


class EfficientNetClassifier(nn.Module):
    """EfficientNet-Lite0 with a fresh ``_fc`` for full fine-tuning; forward(pixel_values) -> logits.

    BatchNorm statistics must be handled deliberately: FACTS measured full fine-tuning on 300 digits with
    BatchNorm in training mode at only 0.44 accuracy, because small batches of unlike images overwrite the
    ImageNet running statistics. With ``freeze_batchnorm`` (the default) every BatchNorm layer stays in
    eval mode (running statistics fixed) even while the module trains; its affine weights still train.
    """

    mean = LITE_MEAN
    std = LITE_STD
    image_size = 224

    def __init__(self, net: nn.Module, freeze_batchnorm: bool = True):
        super().__init__()
        self.net = net
        self.freeze_batchnorm = freeze_batchnorm

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def preprocess(self, images: list, size: int | None = None) -> torch.Tensor:
        """PIL images -> pixel values, as ``ImageBackbone.preprocess``."""
        return preprocess_images(images, size or self.image_size, self.mean, self.std)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values)


def build_efficientnet_classifier(resolved: ResolvedModel, num_labels: int,
                                  freeze_batchnorm: bool = True) -> EfficientNetClassifier:
    """A trainable EfficientNet-Lite0 with a new ``num_labels``-way head (for the ``full`` strategy).

    Args:
        resolved: the resolved ``efficientnet-lite0`` (kind "efficientnet").
        num_labels: how many classes.
        freeze_batchnorm: keep BatchNorm running statistics fixed while training (see the class docstring).
    """
    if resolved.kind != "efficientnet":
        raise ValueError(f"{resolved.name} is not EfficientNet: load transformers image models with "
                         "core.models.load_image_classifier.")
    if num_labels < 2:
        raise ValueError(f"num_labels is {num_labels}: a classifier needs at least 2 classes.")
    return EfficientNetClassifier(_load_efficientnet(resolved, num_labels), freeze_batchnorm)


def build_efficientnet_regressor(resolved: ResolvedModel, freeze_batchnorm: bool = True) -> EfficientNetClassifier:
    """A trainable EfficientNet-Lite0 with a new one-output head (image regression), BatchNorm as for classifiers.

    Args:
        resolved: the resolved ``efficientnet-lite0`` (kind "efficientnet").
        freeze_batchnorm: keep BatchNorm running statistics fixed while training.
    """
    if resolved.kind != "efficientnet":
        raise ValueError(f"{resolved.name} is not EfficientNet: load transformers image models with "
                         "core.models.regressors.build_regressor.")
    return EfficientNetClassifier(_load_efficientnet(resolved, 1), freeze_batchnorm)


# --- transformers image models --------------------------------------------------------------------
class TransformersImageBackbone(ImageBackbone):
    """A transformers vision model (ViT, DINOv2, ConvNeXt, ...) with a tap per hidden layer or stage.

    Token layers are mean-pooled over all tokens, feature maps over space; the last tap is the model's own
    pooled output (the normalised CLS token for ViT/DINOv2, the pooled final stage for ConvNeXt).
    """

    def __init__(self, model: nn.Module, image_size: int, mean, std):
        super().__init__()
        self.model = model
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)
        self._interpolate = "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
        self._measure_taps()
        self.tap_names = [f"layer{i}" for i in range(1, len(self.tap_dims))] + ["pooled"]

    def _run(self, pixel_values: torch.Tensor):
        kwargs = {"output_hidden_states": True}
        if self._interpolate:
            kwargs["interpolate_pos_encoding"] = True  # lets ViT take inputs smaller than its training size
        out = self.model(pixel_values=pixel_values, **kwargs)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = _pool(out.last_hidden_state)
        return out.hidden_states, pooled.reshape(pooled.shape[0], -1)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        hidden, pooled = self._run(pixel_values)
        # hidden[0] is the embedding output (patches or the stem): not a learned depth worth a tap
        return [_pool(h) for h in hidden[1:]] + [pooled]


def _pool(hidden: torch.Tensor) -> torch.Tensor:
    if hidden.dim() == 4:
        return hidden.mean(dim=(2, 3))
    if hidden.dim() == 3:
        return hidden.mean(dim=1)
    return hidden


def image_settings(folder, config) -> tuple[int, tuple, tuple]:
    """Input size, mean and std from preprocessor_config.json, else from the config, else ImageNet's."""
    settings = {}
    path = folder / "preprocessor_config.json"
    if path.is_file():
        settings = json.loads(path.read_text(encoding="utf-8"))
    size = settings.get("crop_size") or settings.get("size") or getattr(config, "image_size", 224)
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge") or 224
    mean = settings.get("image_mean") or IMAGENET_MEAN
    std = settings.get("image_std") or IMAGENET_STD
    return int(size), tuple(mean), tuple(std)


def native_image_side(resolved: ResolvedModel) -> int:
    """The input side an image model was trained at (EfficientNet-Lite0: 224; a transformers folder: its
    preprocessor's), the largest side the studio feeds it."""
    if resolved.kind == "efficientnet":
        return 224
    load_stack()
    from transformers import AutoConfig

    return image_settings(Path(resolved.path), AutoConfig.from_pretrained(resolved.path))[0]


def load_image_backbone(resolved: ResolvedModel) -> ImageBackbone:
    """The frozen backbone of an image model, in eval mode and fp32.

    Args:
        resolved: from ``core.models.resolve_model`` (EfficientNet .pth or a transformers vision folder).
    """
    if resolved.kind == "efficientnet":
        backbone = EfficientNetBackbone(_load_efficientnet(resolved))
    else:
        load_stack()
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(resolved.path)
        if not hasattr(config, "num_channels"):
            raise ModelUnavailable(f"{resolved.name} is not an image model ({config.model_type}): pick an image "
                                   "model such as efficientnet-lite0.")
        model = AutoModel.from_pretrained(resolved.path, dtype=torch.float32)
        backbone = TransformersImageBackbone(model.eval(), *image_settings(resolved.path, config))
    backbone.requires_grad_(False)
    return backbone.eval()


# --- text -----------------------------------------------------------------------------------------
class TextEncoder:
    """A frozen transformers encoder that turns texts into mean-pooled vectors (what all-MiniLM is trained
    for).

    Attributes:
        tokenizer: the model's tokenizer.
        model: the encoder (``AutoModel``), eval mode, fp32.
    """

    def __init__(self, tokenizer, model: nn.Module):
        self.tokenizer = tokenizer
        self.model = model

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 64, max_length: int = 256,
              normalize: bool = False) -> torch.Tensor:
        """Mean-pooled embeddings (N, dim), padding excluded from the mean.

        Args:
            texts: the texts, in order.
            batch_size: texts per forward pass.
            max_length: longer texts are truncated to this many tokens.
            normalize: scale each vector to unit length (sentence-transformers does for similarity search).
        """
        texts = [str(t) for t in texts]
        out = torch.empty(len(texts), self.dim)
        # sorted by length so that each batch pads little; results go back to the callers' order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in index], padding=True, truncation=True,
                                   max_length=max_length, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out[torch.tensor(index)] = pooled.float()
        return torch.nn.functional.normalize(out, dim=-1) if normalize else out


def load_text_encoder(resolved: ResolvedModel) -> TextEncoder:
    """A frozen text encoder for head-only classification.

    Args:
        resolved: from ``core.models.resolve_model`` (a transformers folder with a tokenizer).
    """
    load_stack()
    from transformers import AutoModel

    from .loaders import load_tokenizer

    if resolved.kind != "transformers":
        raise ModelUnavailable(f"{resolved.name} is an image model: pick a text model such as minilm-l6.")
    tokenizer = load_tokenizer(resolved)
    model = AutoModel.from_pretrained(resolved.path, dtype=torch.float32).eval()
    model.requires_grad_(False)
    return TextEncoder(tokenizer, model)

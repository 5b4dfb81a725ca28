"""Fine-tuned classifier models (LoRA and full): building one with a fresh head, turning raw items into its
inputs, predicting, and saving and loading its weights. Shared by the training recipe and inference.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

HEAD_NAMES = ("pre_classifier", "classifier", "score", "head", "fc")


class ModelInputs:
    """Turns a batch of raw items (texts, image paths or PIL images) into the model's keyword inputs.

    Args:
        task: the job's task: its modality (text or image) says how items are read.
        tokenizer: for texts.
        max_length: token limit for texts.
        image_size: side images are resized to.
        mean, std: image normalisation.
        interpolate: pass ``interpolate_pos_encoding=True`` (ViT-like models at a size other than their own).
    """

    def __init__(self, task: str, tokenizer=None, max_length: int = 256, image_size: int = 224,
                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolate: bool = False) -> None:
        self.task = task
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.image_size = int(image_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.interpolate = interpolate
        self.text = reads_text(task)

    def __call__(self, items: Sequence) -> dict:
        if self.text:
            return dict(self.tokenizer([str(t) for t in items], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt"))
        from .backbones import preprocess_images
        from .encoders import open_image

        inputs = {"pixel_values": preprocess_images([open_image(i) for i in items], self.image_size, self.mean,
                                                    self.std)}
        if self.interpolate:
            inputs["interpolate_pos_encoding"] = True
        return inputs

    def settings(self) -> dict:
        """JSON-able settings to rebuild this object at inference (the tokenizer is saved separately)."""
        if self.text:
            return {"max_length": self.max_length}
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "interpolate": self.interpolate}


def reads_text(task: str) -> bool:
    """Whether ``task``'s items are texts (text classification or regression) rather than images."""
    from ..tasks import get_task
    return get_task(task).modality == "text"


def image_inputs(resolved, model: nn.Module | None, image_size: int) -> ModelInputs:
    """``ModelInputs`` for an image model: normalisation from its preprocessor config (EfficientNet: its own)."""
    if resolved.kind == "efficientnet":
        from .backbones import LITE_MEAN, LITE_STD
        return ModelInputs("image-classification", image_size=image_size, mean=LITE_MEAN, std=LITE_STD)
    from transformers import AutoConfig

    from .backbones import image_settings

    native, mean, std = image_settings(Path(resolved.path), AutoConfig.from_pretrained(resolved.path))
    interpolate = image_size != native and model is not None and _accepts(model, "interpolate_pos_encoding")
    if not interpolate and model is not None:
        image_size = native  # a model that cannot take other sizes gets its own
    return ModelInputs("image-classification", image_size=image_size, mean=mean, std=std, interpolate=interpolate)


def _accepts(model: nn.Module, name: str) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return name in inspect.signature(base.forward).parameters


def head_module_names(model: nn.Module) -> list[str]:
    """The new classification layers of a transformers classifier (trained in full beside LoRA adapters)."""
    return [name for name in HEAD_NAMES if isinstance(getattr(model, name, None), nn.Module)]


def build_model(resolved, task: str, labels: list[str]) -> nn.Module:
    """A base model with a fresh ``len(labels)``-way head (random head: seed torch before calling).

    Args:
        resolved: a ``core.models.ResolvedModel``.
        task: text-classification | image-classification.
        labels: class names in label-id order.
    """
    from .loaders import load_image_classifier, load_text_classifier

    id2label = dict(enumerate(labels))
    if resolved.kind == "efficientnet":
        from .backbones import build_efficientnet_classifier
        return build_efficientnet_classifier(resolved, len(labels))
    if task == "image-classification":
        return load_image_classifier(resolved, len(labels), id2label)
    return load_text_classifier(resolved, len(labels), id2label)


def logits_of(model: nn.Module, inputs: dict) -> torch.Tensor:
    """Logits whatever the model returns (transformers outputs or a plain tensor)."""
    if "pixel_values" in inputs and not hasattr(model, "config") and not hasattr(model, "peft_config"):
        return model(inputs["pixel_values"])
    out = model(**inputs)
    return out if isinstance(out, torch.Tensor) else out.logits


@torch.no_grad()
def predict_probs(model: nn.Module, inputs: ModelInputs, items: Sequence, batch_size: int = 32) -> np.ndarray:
    """(N, C) softmax probabilities for raw items.

    Args:
        model: a fine-tuned classifier.
        inputs: turns items into model inputs.
        items: texts or images.
        batch_size: items per forward pass.
    """
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, len(items), batch_size):
        logits = logits_of(model, inputs(items[start:start + batch_size]))
        parts.append(torch.softmax(logits.float(), dim=-1).numpy())
    model.train(was_training)
    return np.concatenate(parts)


# --- saving and loading ---------------------------------------------------------------------------
def save_model(model: nn.Module, folder: Path, resolved, tokenizer=None) -> None:
    """Write the tuned model into ``folder`` in the ecosystem's formats.

    lora: a peft adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``, the new head inside);
    full: ``save_pretrained`` (safetensors), or for EfficientNet a ``model.safetensors`` state dict.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if resolved.kind == "efficientnet":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    else:
        model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


def load_model(folder: Path, resolved, task: str, labels: list[str]) -> nn.Module:
    """The tuned model saved by ``save_model``, in eval mode.

    Args:
        folder: the run's model folder (a peft adapter folder, or a whole model).
        resolved: the base model (LoRA adapters go on top of it; EfficientNet is rebuilt from it).
        task: text-classification | image-classification.
        labels: class names in label-id order.
    """
    if resolved.kind == "efficientnet":
        from safetensors.torch import load_file
        model = build_model(resolved, task, labels)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel
        return PeftModel.from_pretrained(build_model(resolved, task, labels), folder).eval()
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    auto = AutoModelForImageClassification if task == "image-classification" else AutoModelForSequenceClassification
    return auto.from_pretrained(folder, dtype=torch.float32).eval()


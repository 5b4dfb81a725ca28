"""Fine-tuned regressors (a text or image model whose new head has one output: a number), and heads that predict
a number from frozen features. Building one, predicting, folding the target's scale into the head, saving and
loading. Shared by the regression recipes and inference.

Training fits standardised targets ((value - mean) / spread of the training rows), which suits every learning rate
and loss the classifiers use. When training ends the scale is folded into the last linear layer
(``fold_target_scale``), so a saved regressor outputs the target's own units: a transformers regressor loads with
``problem_type="regression"`` and its pipeline's raw score is the prediction, with nothing else to apply.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .classifiers import ModelInputs, logits_of

ID2LABEL = {0: "value"}


def build_regressor(resolved, task: str) -> nn.Module:
    """A base model with a fresh one-output head (random head: seed torch before calling).

    Args:
        resolved: a ``core.models.ResolvedModel``.
        task: text-regression | image-regression.
    """
    from ..tasks import get_task
    from .loaders import load_image_classifier, load_text_classifier

    if resolved.kind == "efficientnet":
        from .backbones import build_efficientnet_regressor
        return build_efficientnet_regressor(resolved)
    load = load_image_classifier if get_task(task).modality == "image" else load_text_classifier
    model = load(resolved, 1, ID2LABEL)
    model.config.problem_type = "regression"  # the transformers head then trains with MSE and saves as such
    return model


def load_regressor(folder: Path, resolved, task: str) -> nn.Module:
    """The tuned regressor a run saved, in eval mode.

    Args:
        folder: the run's model folder (a peft adapter folder, a whole model, or EfficientNet's state dict).
        resolved: the base model (adapters go on top of it; EfficientNet is rebuilt from it).
        task: text-regression | image-regression.
    """
    if resolved.kind == "efficientnet":
        from safetensors.torch import load_file
        model = build_regressor(resolved, task)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel
        return PeftModel.from_pretrained(build_regressor(resolved, task), folder).eval()
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    from ..tasks import get_task

    auto = AutoModelForImageClassification if get_task(task).modality == "image" \
        else AutoModelForSequenceClassification
    return auto.from_pretrained(folder, dtype=torch.float32).eval()


@torch.no_grad()
def predict_values(model: nn.Module, inputs: ModelInputs, items: Sequence, batch_size: int = 32) -> np.ndarray:
    """(N,) raw outputs of a regressor for raw items (the target's units once its scale is folded in).

    Args:
        model: a regressor from ``build_regressor`` or ``load_regressor``.
        inputs: turns items into model inputs.
        items: texts or images.
        batch_size: items per forward pass.
    """
    was_training = model.training
    model.eval()
    parts = [logits_of(model, inputs(items[i:i + batch_size])).float().reshape(-1).numpy()
             for i in range(0, len(items), batch_size)]
    model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def within_range(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """Predictions kept within the training targets' range ``[low, high]`` (either bound may be None).

    A head or fine-tune extrapolates linearly past the values it was trained on (on the bundled circle counts a
    scene of one circle was predicted -0.44); a true value inside the training range is never farther from the
    clipped prediction than from the raw one, so clipping only helps rows like the ones trained on. It costs rows
    whose true value lies outside every training value, which the studio cannot have learned anyway.
    """
    values = np.asarray(values, dtype=np.float64)
    if low is None and high is None:
        return values
    return np.clip(values, -np.inf if low is None else low, np.inf if high is None else high)


def output_layers(model: nn.Module) -> list[nn.Linear]:
    """The one-output linear layers that produce a regressor's (or a head's) prediction.

    Under peft the head is trained as a copy (``modules_to_save``): that copy is the one that answers, so only it
    is returned; the frozen original is left as it is.
    """
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == 1]
    saved = [(name, m) for name, m in found if "modules_to_save" in name]
    return [m for _, m in (saved or found)]


@torch.no_grad()
def fold_target_scale(model: nn.Module, mean: float, std: float) -> None:
    """Make a model trained on standardised targets output the target's units: ``y = std * out + mean``, folded
    into the last linear layer's weight and bias (exact, so the saved model needs nothing else).

    Args:
        model: a regressor or a feature head whose output layer has one output.
        mean, std: the training targets' mean and spread.
    """
    layers = output_layers(model)
    if not layers:
        raise ValueError("the model has no one-output linear layer to fold the target's scale into.")
    for layer in layers:
        layer.weight.mul_(std)
        if layer.bias is not None:
            layer.bias.mul_(std).add_(mean)
        else:
            layer.bias = nn.Parameter(torch.full((1,), float(mean), dtype=layer.weight.dtype))

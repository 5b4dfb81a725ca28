"""How each strategy prepares a model: a small registry of frozen entries, each with a plain sentence.

``head-only`` is not applied to a transformers model here: the classifier engine trains a head on cached
backbone features. The others wrap a loaded transformers model for the ``Trainer``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .config import TrainConfig


class StrategyUnavailable(RuntimeError):
    """The strategy cannot run here; the message says why and what to use instead."""


@dataclass(frozen=True)
class Strategy:
    key: str
    title: str
    when: str  # one plain sentence: when to use it
    trains: str  # what trains


STRATEGIES: tuple[Strategy, ...] = (
    Strategy("qlora", "QLoRA", "For models too big for memory: the base is loaded in 4 bits and small "
             "adapters train on top. On a CPU with small models it is slower than LoRA and saves nothing.",
             "LoRA adapters on a 4-bit base"),
    Strategy("lora", "LoRA", "The usual choice: small adapter matrices train beside frozen weights, so it is "
             "fast, light on memory and the result is a few MB.", "low-rank adapters on attention and MLP"),
    Strategy("head-only", "Head only", "The fastest: the model is frozen, its features are computed once, and "
             "only a new classification layer trains (seconds on a CPU). Try it first for classifiers.",
             "a new classification head on frozen features"),
    Strategy("full", "Full fine-tune", "Every weight trains: the most capacity, the most memory and time; "
             "best with plenty of data and a GPU.", "all weights"),
)


def get_strategy(key: str) -> Strategy:
    for strategy in STRATEGIES:
        if strategy.key == key:
            return strategy
    raise KeyError(f"unknown strategy '{key}': use one of {', '.join(s.key for s in STRATEGIES)}")


# Projections LoRA targets, by architecture family; "all-linear" lets peft find them in anything else.
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "bert": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    # transformers 5 names ViT/DINOv2 projections like Llama's (q_proj ... o_proj) with an fc1/fc2 MLP
    "vit": ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
    "dinov2": ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
}


def lora_targets(model: torch.nn.Module) -> list[str] | str:
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    return LORA_TARGETS.get(model_type, "all-linear")


def quantization_config():
    """The bitsandbytes 4-bit NF4 double-quantisation config QLoRA loads the base with."""
    try:
        import bitsandbytes  # noqa: F401  (heavy; imported only for QLoRA)
        from transformers import BitsAndBytesConfig
    except Exception as exc:  # an import failure of a compiled package can be any exception
        raise StrategyUnavailable(
            f"QLoRA needs bitsandbytes, which could not be loaded here ({exc}). Choose LoRA instead: "
            "it trains the same adapters on the unquantised model."
        ) from None
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.float32)


def apply_lora(model: torch.nn.Module, task: str, train: TrainConfig,
               modules_to_save: list[str] | None = None) -> torch.nn.Module:
    """Wrap ``model`` in peft LoRA on its attention and MLP projections.

    Args:
        model: a loaded transformers model.
        task: chat | text-classification | image-classification (sets the peft task type).
        train: rank, alpha and dropout come from here.
        modules_to_save: layers trained in full beside the adapters (a new classification head).
    """
    from peft import LoraConfig, TaskType, get_peft_model

    task_type = {"chat": TaskType.CAUSAL_LM, "text-classification": TaskType.SEQ_CLS}.get(task)
    rank = train.lora_r or 8
    config = LoraConfig(
        r=rank, lora_alpha=train.lora_alpha or 2 * rank, lora_dropout=train.lora_dropout,
        target_modules=lora_targets(model), task_type=task_type, modules_to_save=modules_to_save,
    )
    return get_peft_model(model, config)


def apply_qlora(model: torch.nn.Module, task: str, train: TrainConfig) -> torch.nn.Module:
    """LoRA on a model that was loaded in 4 bits (see ``quantization_config``)."""
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=train.gradient_checkpointing)
    _keep_4bit_layout_trainable(model)
    return apply_lora(model, task, train)


def _keep_4bit_layout_trainable(model: torch.nn.Module) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference when the model is put in eval mode.

    On CPUs with AVX512-BF16, bitsandbytes 0.50 repacks a ``Linear4bit`` weight the first time it runs in eval
    mode (an evaluation during training) and then serves it through a kernel without a backward, so the gradient
    to earlier layers silently goes missing for the rest of training.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def apply_full(model: torch.nn.Module, task: str, train: TrainConfig) -> torch.nn.Module:
    for param in model.parameters():
        param.requires_grad_(True)
    return model


APPLY: dict[str, Callable[..., torch.nn.Module]] = {"lora": apply_lora, "qlora": apply_qlora, "full": apply_full}


def apply_strategy(name: str, model: torch.nn.Module, task: str, train: TrainConfig, **kwargs) -> torch.nn.Module:
    """Prepare a loaded transformers model for training with strategy ``name`` (not head-only)."""
    if name not in APPLY:
        raise StrategyUnavailable(f"strategy '{name}' does not wrap a model; head-only trains on cached features.")
    model = APPLY[name](model, task, train, **kwargs)
    if train.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return model


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total

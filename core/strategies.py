"""Training strategies: each declares itself once, with its traits, and the rest of the code asks the registry
(peft registers its methods the same way) instead of comparing strategy names.

A strategy knows which tasks it serves, whether it trains an adapter beside frozen weights, loads the base in
4 bits, trains on cached features, needs a transformer, and how much it trains (for the memory estimate). Those
that wrap a loaded transformers model for the ``Trainer`` carry a ``prepare`` function; ``head-only`` has none
(the classifier engine trains a head on cached backbone features).

torch and peft are imported inside the functions that need them: the config checks and the page read this
registry long before any model is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .tasks import TASKS


class StrategyUnavailable(RuntimeError):
    """The strategy cannot run here; the message says why and what to use instead."""


@dataclass(frozen=True)
class Strategy:
    """One way to train.

    Args:
        key: what configs say (``strategy: lora``).
        title: what the page shows.
        when: one plain sentence: when to use it.
        trains: what trains, in a few words.
        tasks: the task keys it applies to.
        adapter: trains a peft adapter beside frozen weights; the run saves the adapter, not the whole model.
        quantised: the frozen base is loaded in 4 bits (bitsandbytes).
        on_features: trains on cached frozen features (no backward pass through the model).
        transformer_only: needs a transformers model (not a plain convolutional network).
        all_weights: every weight trains (a full fine-tune).
        searches: chooses among the other strategies itself (``auto``: heads and fine-tunes compared by
            cross-validation on the training rows within a time budget).
        trained_share: the share of the model's weights that train (gradients and optimiser state).
        weight_bytes: bytes per frozen weight when the base is loaded (None: by precision, 4 or 2).
        prepare: wraps a loaded model for training, ``prepare(model, task, train_config, **extra)``.
    """

    key: str
    title: str
    when: str
    trains: str
    tasks: tuple[str, ...]
    adapter: bool = False
    quantised: bool = False
    on_features: bool = False
    transformer_only: bool = False
    all_weights: bool = False
    searches: bool = False
    trained_share: float = 0.0
    weight_bytes: float | None = None
    prepare: Callable[..., Any] | None = None


CLASSIFIER_TASKS = ("text-classification", "image-classification")

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


def lora_targets(model) -> list[str] | str:
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    return LORA_TARGETS.get(model_type, "all-linear")


def quantization_config():
    """The bitsandbytes 4-bit NF4 double-quantisation config QLoRA loads the base with."""
    import torch

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


def apply_lora(model, task: str, train, modules_to_save: list[str] | None = None):
    """Wrap ``model`` in peft LoRA on its attention and MLP projections.

    Args:
        model: a loaded transformers model.
        task: the job's task (sets the peft task type).
        train: a ``TrainConfig``; rank, alpha and dropout come from here.
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


def apply_qlora(model, task: str, train, **extra):
    """LoRA on a model that was loaded in 4 bits (see ``quantization_config``)."""
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=train.gradient_checkpointing)
    _keep_4bit_layout_trainable(model)
    return apply_lora(model, task, train, **extra)


def _keep_4bit_layout_trainable(model) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference when the model is put in eval mode.

    On CPUs with AVX512-BF16, bitsandbytes 0.50 repacks a ``Linear4bit`` weight the first time it runs in eval
    mode (an evaluation during training) and then serves it through a kernel without a backward, so the gradient
    to earlier layers silently goes missing for the rest of training.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def apply_full(model, task: str, train, **extra):
    for param in model.parameters():
        param.requires_grad_(True)
    return model


STRATEGY_LIST: tuple[Strategy, ...] = (
    Strategy("auto", "Automatic (recommended)", "The studio tries heads on the frozen features and fine-tunes "
             "within a time budget it states up front, keeps what scores best in cross-validation on your "
             "training rows and shows every candidate on a leaderboard.",
             "the best of heads and fine-tunes, chosen by cross-validation", tasks=CLASSIFIER_TASKS,
             searches=True, trained_share=1.0),  # memory: it may try a full fine-tune
    Strategy("head-only", "Head only", "The fastest: the model is frozen, its features are computed once, and "
             "only a new classification layer trains (seconds on a CPU). Try it first for classifiers.",
             "a new classification head on frozen features", tasks=CLASSIFIER_TASKS, on_features=True),
    Strategy("qlora", "QLoRA", "For models too big for memory: the base is loaded in 4 bits and small "
             "adapters train on top. On a CPU with small models it is slower than LoRA and saves nothing.",
             "LoRA adapters on a 4-bit base", tasks=("chat",), adapter=True, quantised=True,
             transformer_only=True, trained_share=0.01, weight_bytes=0.56, prepare=apply_qlora),
    Strategy("lora", "LoRA", "The usual choice: small adapter matrices train beside frozen weights, so it is "
             "fast, light on memory and the result is a few MB.", "low-rank adapters on attention and MLP",
             tasks=("chat",) + CLASSIFIER_TASKS, adapter=True, transformer_only=True, trained_share=0.01,
             prepare=apply_lora),
    Strategy("full", "Full fine-tune", "Every weight trains: the most capacity, the most memory and time; "
             "best with plenty of data and a GPU.", "all weights", tasks=("chat",) + CLASSIFIER_TASKS,
             all_weights=True, trained_share=1.0, prepare=apply_full),
)
STRATEGIES: dict[str, Strategy] = {s.key: s for s in STRATEGY_LIST}


def get_strategy(key: str) -> Strategy:
    """The strategy called ``key``; KeyError naming the known ones otherwise."""
    try:
        return STRATEGIES[key]
    except KeyError:
        raise KeyError(f"unknown strategy '{key}': use one of {', '.join(STRATEGIES)}") from None


def strategies_for(task: str, transformer: bool = True) -> tuple[str, ...]:
    """The strategy keys that apply to ``task``, in registry order; without those that need a transformer when
    the model is not one (``transformer=False``)."""
    return tuple(s.key for s in STRATEGY_LIST if task in s.tasks and (transformer or not s.transformer_only))


STRATEGIES_BY_TASK: dict[str, tuple[str, ...]] = {task: strategies_for(task) for task in TASKS}


def apply_strategy(name: str, model, task: str, train, **extra):
    """Prepare a loaded transformers model for training with strategy ``name`` (not one on cached features)."""
    strategy = get_strategy(name)
    if strategy.prepare is None:
        raise StrategyUnavailable(f"strategy '{name}' does not wrap a model; it trains on cached features.")
    model = strategy.prepare(model, task, train, **extra)
    if train.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return model


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total

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

from .tasks import TASKS, get_task


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
        weight_bytes: bytes per quantised frozen weight (None: not quantised, 4 or 2 by precision; the vocabulary
            matrices a 4-bit model keeps unquantised are counted apart, in core.memory).
        prepare: wraps a loaded model for training, ``prepare(model, task, train_config, **extra)``; None for
            head-only, and for the preference objectives, whose TRL trainer wraps the model from ``lora_config``.
        objective: the preference objective it trains with (``dpo``, ``orpo``: the TRL trainer the preference
            recipe picks), None for the others.
        mergeable: the trained adapter can be merged into the base weights (a merged export); prefix tuning's
            virtual tokens cannot.
        searched: the automatic search (``auto``) tries it among its fine-tunes.
        packable: rows may share one packed sequence (a GPU's padding-free batches); not prefix tuning, whose
            virtual tokens sit before every row.
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
    objective: str | None = None
    mergeable: bool = True
    searched: bool = False
    packable: bool = True


CLASSIFIER_TASKS = ("text-classification", "image-classification")
REGRESSION_TASKS = ("text-regression", "image-regression")
ENCODER_TASKS = CLASSIFIER_TASKS + REGRESSION_TASKS  # a new head on a text or image encoder
CAUSAL_TASKS = ("chat", "text-completion")  # a causal LM trained on text with a plain next-token loss

# Projections LoRA targets, by architecture family; "all-linear" lets peft find them in anything else.
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "bert": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    # transformers 5 names ViT/DINOv2 projections like Llama's (q_proj ... o_proj) with an fc1/fc2 MLP
    "vit": ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
    "dinov2": ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
}


def lora_targets(model) -> list[str] | str:
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    return LORA_TARGETS.get(model_type, "all-linear")


def quantization_config(compute_dtype=None, sharded: bool = False):
    """The bitsandbytes 4-bit NF4 double-quantisation config QLoRA loads the base with.

    Args:
        compute_dtype: the dtype the 4-bit weights are dequantised to for each matmul (bf16 on a GPU that has
            it, fp16 on an older one; fp32 on a CPU by default).
        sharded: the run shards the model with FSDP: the 4-bit weights are then stored in ``compute_dtype``
            words, which FSDP can shard like any float tensor (bitsandbytes' FSDP-QLoRA recipe).
    """
    import torch

    try:
        import bitsandbytes  # noqa: F401  (heavy; imported only for QLoRA)
        from transformers import BitsAndBytesConfig
    except Exception as exc:  # an import failure of a compiled package can be any exception
        raise StrategyUnavailable(
            f"QLoRA needs bitsandbytes, which could not be loaded here ({exc}). Choose LoRA instead: "
            "it trains the same adapters on the unquantised model."
        ) from None
    compute = compute_dtype or torch.float32
    extra = {"bnb_4bit_quant_storage": compute} if sharded else {}
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, **extra)


def quantized_device_map(hardware, sharded: bool = False):
    """Where a 4-bit model is loaded: this process's GPU (its local rank under accelerate), the CPU without one;
    None under FSDP, which loads on the CPU and places the shards itself."""
    import os

    if sharded:
        return None
    if hardware is not None and hardware.device == "cuda":
        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return "cpu"


def lora_config(model, task: str, train, modules_to_save: list[str] | None = None, **variant):
    """The peft ``LoraConfig`` for ``model``: its attention and MLP projections, rank and alpha from ``train``.

    Args:
        model: a loaded transformers model.
        task: the job's task (sets the peft task type: a causal LM for generation tasks).
        train: a ``TrainConfig``; rank, alpha and dropout come from here.
        modules_to_save: layers trained in full beside the adapters (a new classification head).
        tokenizer: not used here (every ``prepare`` takes it; prefix tuning starts from a sentence's tokens).
        variant: ``LoraConfig`` switches of a LoRA variant (``use_dora=True``, ``use_rslora=True``).
    """
    from peft import LoraConfig

    rank = train.lora_r or 8
    return LoraConfig(
        r=rank, lora_alpha=train.lora_alpha or 2 * rank, lora_dropout=train.lora_dropout,
        target_modules=lora_targets(model), task_type=_peft_task(task), modules_to_save=modules_to_save, **variant,
    )


def apply_lora(model, task: str, train, modules_to_save: list[str] | None = None, tokenizer=None, **variant):
    """Wrap ``model`` in peft LoRA on its attention and MLP projections (``lora_config``).

    Args:
        model: a loaded transformers model.
        task: the job's task (sets the peft task type).
        train: a ``TrainConfig``; rank, alpha and dropout come from here.
        modules_to_save: layers trained in full beside the adapters (a new classification head).
        tokenizer: not used here (every ``prepare`` takes it; prefix tuning starts from a sentence's tokens).
        variant: ``LoraConfig`` switches of a LoRA variant (``use_dora=True``, ``use_rslora=True``).
    """
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, task, train, modules_to_save, **variant))


def apply_dora(model, task: str, train, modules_to_save: list[str] | None = None, **extra):
    """DoRA: LoRA whose weights are split into a direction (the low-rank update) and a learned magnitude."""
    return apply_lora(model, task, train, modules_to_save, use_dora=True)


def apply_rslora(model, task: str, train, modules_to_save: list[str] | None = None, **extra):
    """rsLoRA: LoRA scaled by alpha / sqrt(rank) instead of alpha / rank, so higher ranks keep learning."""
    return apply_lora(model, task, train, modules_to_save, use_rslora=True)


# IA3 scales the keys, values and the MLP's down projection (its input, for the MLP: peft's feedforward_modules).
IA3_TARGETS = {
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "bert": (["key", "value", "output.dense"], ["output.dense"]),
    "distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"]),
    "vit": (["k_proj", "v_proj", "fc2"], ["fc2"]),
    "dinov2": (["k_proj", "v_proj", "fc2"], ["fc2"]),
}


def apply_ia3(model, task: str, train, modules_to_save: list[str] | None = None, **extra):
    """IA3: one learned scale per channel of the keys, values and MLP (peft's own layer map for other families)."""
    from peft import IA3Config, get_peft_model

    model_type = getattr(getattr(model, "config", None), "model_type", "")
    targets, feedforward = IA3_TARGETS.get(model_type, (None, None))
    try:
        config = IA3Config(target_modules=targets, feedforward_modules=feedforward, task_type=_peft_task(task),
                           modules_to_save=modules_to_save)
        return get_peft_model(model, config)
    except ValueError as exc:  # peft knows no IA3 layers for this family
        raise StrategyUnavailable(f"IA3 does not know which layers of a '{model_type}' model to scale ({exc}); "
                                  "choose LoRA for this model.") from None


PREFIX_TOKENS = 16  # virtual tokens per layer; measured on the bundled chat example (scripts/compare_adapters.py)
# The prefix starts as the keys and values this text leaves in every layer (Li & Liang 2021: initialising a prefix
# with real words' activations trains far better on little data than random vectors, which made the bundled chat
# example's answers worse than the untouched model's: answer loss 3.40 -> 4.51).
PREFIX_INIT_TEXT = "Answer the user's question the way the examples answer it: with the right facts, in their style."


def apply_prefix(model, task: str, train, tokenizer=None, **extra):
    """Prefix tuning: learned keys and values for ``PREFIX_TOKENS`` virtual tokens before every layer's attention.

    With a tokenizer the prefix starts as ``PREFIX_INIT_TEXT``'s own keys and values (``_prefix_from_text``), so
    before its first step the model answers as it would with that sentence before the prompt; without one, peft's
    random start. peft serves prefix tuning to causal LMs; the classifiers' heads would need their own
    prompt-learning path, so the studio offers it for chat models only (``Strategy.tasks``).
    """
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    start = _prefix_from_text(model, tokenizer, PREFIX_INIT_TEXT, PREFIX_TOKENS) if tokenizer is not None else None
    model = get_peft_model(model, PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=PREFIX_TOKENS))
    if start is not None:
        import torch

        embedding = model.prompt_encoder[model.active_adapter].embedding
        if tuple(embedding.weight.shape) == tuple(start.shape):  # peft's layout: what _prefix_from_text builds
            with torch.no_grad():
                embedding.weight.copy_(start.to(embedding.weight.dtype))
    return model


def _prefix_from_text(model, tokenizer, text: str, tokens: int):
    """The keys and values ``text`` (repeated or cut to ``tokens`` tokens) leaves in each layer of ``model``, laid
    out as peft's prefix embedding: one row per virtual token, (layer 0 keys, layer 0 values, layer 1 keys, ...),
    each as (key-value heads x head width). None when the model's cache is not of the usual kind."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        return None
    import torch

    ids = (ids * (tokens // len(ids) + 1))[:tokens]
    device = next(model.parameters()).device
    with torch.no_grad():
        cache = model(input_ids=torch.tensor([ids], device=device), use_cache=True).past_key_values
    layers = getattr(cache, "layers", None)
    if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
        return None
    per_layer = [torch.stack([layer.keys[0], layer.values[0]]) for layer in layers]  # (2, heads, tokens, width)
    stacked = torch.stack(per_layer)  # (layers, 2, heads, tokens, width)
    return stacked.permute(3, 0, 1, 2, 4).reshape(tokens, -1).float()


def _peft_task(task: str):
    from peft import TaskType

    if task in TASKS and get_task(task).kind == "generation":
        return TaskType.CAUSAL_LM
    return TaskType.SEQ_CLS if task in TASKS and get_task(task).modality == "text" else None


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
             "the best of heads and fine-tunes, chosen by cross-validation", tasks=ENCODER_TASKS,
             searches=True, trained_share=1.0),  # memory: it may try a full fine-tune
    Strategy("head-only", "Head only", "The fastest: the model is frozen, its features are computed once, and "
             "only a new classification layer trains (seconds on a CPU). Try it first for classifiers.",
             "a new classification head on frozen features", tasks=ENCODER_TASKS, on_features=True),
    Strategy("qlora", "QLoRA", "For models too big for memory: the base is loaded in 4 bits and small "
             "adapters train on top. On a CPU with small models it is slower than LoRA and saves nothing.",
             "LoRA adapters on a 4-bit base", tasks=CAUSAL_TASKS, adapter=True, quantised=True,
             transformer_only=True, trained_share=0.01, weight_bytes=0.56, prepare=apply_qlora),
    Strategy("lora", "LoRA", "The usual choice: small adapter matrices train beside frozen weights, so it is "
             "fast, light on memory and the result is a few MB.", "low-rank adapters on attention and MLP",
             tasks=CAUSAL_TASKS + ENCODER_TASKS, adapter=True, transformer_only=True, trained_share=0.01,
             searched=True, prepare=apply_lora),
    Strategy("full", "Full fine-tune", "Every weight trains: the most capacity, the most memory and time; "
             "best with plenty of data and a GPU.", "all weights", tasks=CAUSAL_TASKS + ENCODER_TASKS,
             all_weights=True, trained_share=1.0, searched=True, prepare=apply_full),
    Strategy("dora", "DoRA", "LoRA that also learns how large each weight column is: it can learn a little more "
             "from the same data, and each step costs more time and memory than LoRA's; try it when LoRA is not "
             "good enough.", "low-rank adapters with learned magnitudes", tasks=("chat",) + ENCODER_TASKS,
             adapter=True, transformer_only=True, trained_share=0.012, prepare=apply_dora),
    Strategy("rslora", "rsLoRA", "LoRA scaled for its rank (alpha / sqrt(rank)), so a higher rank keeps learning "
             "where plain LoRA stalls: use it with rank 32 or more for a harder task.",
             "rank-stabilised low-rank adapters", tasks=("chat",) + ENCODER_TASKS, adapter=True,
             transformer_only=True, trained_share=0.01, prepare=apply_rslora),
    Strategy("ia3", "IA3", "The smallest adapter: it learns one scale per channel of the keys, values and MLP, so "
             "it trains fast and can hardly over-fit a few hundred rows, but it learns less than LoRA.",
             "per-channel scales of keys, values and MLP", tasks=("chat",) + ENCODER_TASKS, adapter=True,
             transformer_only=True, trained_share=0.0005, prepare=apply_ia3),
    Strategy("prefix", "Prefix tuning", "The model stays untouched and a few learned virtual tokens are put before "
             "every layer's attention: the smallest file, but weaker than LoRA on small models and it cannot be "
             "merged into the weights. Chat models only (not classifiers or regressors).",
             "learned virtual tokens before every attention layer", tasks=("chat",), adapter=True,
             transformer_only=True, trained_share=0.001, mergeable=False, packable=False, prepare=apply_prefix),
    Strategy("dpo", "DPO", "The usual choice for preference pairs (Direct Preference Optimization): LoRA adapters "
             "learn to score the chosen answer above the rejected one, measured against the untouched model, "
             "which keeps the tuned model close to what it was.", "LoRA adapters, by chosen-vs-rejected pairs "
             "against the base", tasks=("preference",), adapter=True, transformer_only=True, trained_share=0.01,
             objective="dpo"),
    Strategy("orpo", "ORPO", "No reference model (Odds Ratio Preference Optimization): one pass learns the chosen "
             "answers, as chat tuning does, while pushing the rejected ones down; a little cheaper per step, and "
             "for when the model has not yet seen answers in this style.", "LoRA adapters, by chosen answers "
             "and chosen-vs-rejected odds", tasks=("preference",), adapter=True, transformer_only=True,
             trained_share=0.01, objective="orpo"),
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

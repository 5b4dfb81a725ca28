"""How much memory a job will need on this machine, before it starts, and what to change when it won't fit."""
from __future__ import annotations

from dataclasses import dataclass, field

from .hardware import Hardware
from .strategies import get_strategy

GB = 2**30
RUNTIME_OVERHEAD_GB = 0.8  # python + torch + transformers (+ the UI) before any model is loaded


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know of a model; guessed from its size when its config is not at hand."""

    params_m: float
    hidden: int = 0
    layers: int = 0
    vocab: int = 0

    @classmethod
    def guess(cls, params_m: float) -> "ModelShape":
        # Rough transformer proportions: params ~ 12 * layers * hidden^2, layers ~ hidden / 64.
        hidden = int(max(256, round((params_m * 1e6 * 64 / 12) ** (1 / 3) / 64) * 64))
        return cls(params_m, hidden, max(2, hidden // 64), 32000)

    @classmethod
    def from_config(cls, params_m: float, config) -> "ModelShape":
        hidden = getattr(config, "hidden_size", 0) or getattr(config, "dim", 0)
        layers = getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layers", 0)
        vocab = getattr(config, "vocab_size", 0)
        if not (hidden and layers):
            return cls.guess(params_m)
        return cls(params_m, hidden, layers, vocab)


@dataclass(frozen=True)
class MemoryEstimate:
    total_gb: float
    available_gb: float
    fits: bool
    breakdown: dict[str, float] = field(default_factory=dict)
    advice: str = ""

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:.2f} GB" for k, v in self.breakdown.items())
        verdict = "fits" if self.fits else "does NOT fit"
        text = f"About {self.total_gb:.1f} GB needed of {self.available_gb:.1f} GB available: {verdict} ({parts})."
        return f"{text} {self.advice}".strip()


def estimate_memory(shape: ModelShape, strategy: str, task: str, batch_size: int, max_length: int,
                    hardware: Hardware, gradient_checkpointing: bool = False,
                    bf16_weights: bool = False) -> MemoryEstimate:
    """Estimate peak memory for model x strategy x batch x length on ``hardware``.

    Args:
        shape: the model's size and, where known, hidden size, layers and vocabulary.
        strategy: qlora | lora | head-only | full.
        task: chat | text-classification | image-classification.
        batch_size, max_length: per-device batch and tokens per row (images: ignored beyond a patch count).
        hardware: where it runs; on a GPU the budget is GPU memory, on a CPU the free RAM.
        bf16_weights: the weights are held in bf16 (``presets.bf16_weights``), half the bytes of fp32.
    """
    params = shape.params_m * 1e6
    traits = get_strategy(strategy)
    bytes_per_weight = traits.weight_bytes or (2 if bf16_weights else 4)
    weights = params * bytes_per_weight  # NF4 for QLoRA: 4 bits + double-quantised scales + fp32 norms, roughly
    # fp32 gradients + AdamW's two moments for what trains (12 bytes); adapters also keep an fp32 copy (16)
    optimiser = params * traits.trained_share * (12 if traits.all_weights else 16)
    tokens = batch_size * (max_length if task != "image-classification" else 197)
    if traits.on_features:
        activations = batch_size * shape.hidden * 4 * 64  # inference only, features cached
    else:
        per_layer = 34 * shape.hidden * 4 if not gradient_checkpointing else 2 * shape.hidden * 4
        activations = tokens * per_layer * shape.layers
        if task == "chat":
            activations += tokens * shape.vocab * 4 * 2  # logits and their gradient
    breakdown = {
        "runtime": RUNTIME_OVERHEAD_GB,
        "weights": weights / GB,
        "gradients+optimiser": optimiser / GB,
        "activations": activations / GB,
    }
    total = sum(breakdown.values())
    available = hardware.gpu_memory_gb if hardware.device == "cuda" else hardware.available_memory_gb
    fits = total <= available * 0.9
    return MemoryEstimate(round(total, 2), round(available, 2), fits,
                          {k: round(v, 3) for k, v in breakdown.items()},
                          _advice(fits, strategy, batch_size, max_length, shape, hardware))


def _advice(fits: bool, strategy: str, batch_size: int, max_length: int, shape: ModelShape,
            hardware: Hardware) -> str:
    traits = get_strategy(strategy)
    if fits:
        if traits.quantised and hardware.device == "cpu" and shape.params_m < 1000:
            return ("QLoRA saves little memory on a CPU with a model this small and is about 25 % slower than "
                    "LoRA: it is for models that do not fit otherwise.")
        return ""
    tips = []
    if batch_size > 1:
        tips.append(f"lower the batch size to {max(1, batch_size // 2)} (and raise gradient accumulation)")
    if max_length > 256:
        tips.append(f"lower the max length to {max(128, max_length // 2)}")
    if traits.all_weights:
        tips.append("use LoRA instead of a full fine-tune")
    if traits.adapter and not traits.quantised and shape.params_m > 1000:
        tips.append("use QLoRA")
    tips.append("turn on gradient checkpointing")
    tips.append("or pick a smaller model")
    return "To fit: " + "; ".join(tips) + "."


def out_of_memory_advice(batch_size: int | None, max_length: int | None) -> str:
    """The plain-words message for an out-of-memory failure, naming the settings to lower."""
    tips = []
    if batch_size and batch_size > 1:
        tips.append(f"batch size {batch_size} -> {max(1, batch_size // 2)}")
    if max_length and max_length > 128:
        tips.append(f"max length {max_length} -> {max(64, max_length // 2)}")
    tips.append("gradient checkpointing on")
    return ("The job ran out of memory. Retry with smaller settings: " + ", ".join(tips)
            + "; or choose LoRA/QLoRA or a smaller model.")

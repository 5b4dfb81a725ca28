"""How much memory a job will need on this machine, before it starts, and what to change when it won't fit.

The estimate follows the job's phases and takes the largest: loading (the weights, plus the weight file's pages
while it is read), training (weights, what the optimiser keeps for the trained weights, activations, the answer
logits) and, for chat, the comparison with the base (a LoRA run trained on a bf16 base on a CPU is scored in fp32,
so the base is loaded again in fp32). On a CPU the budget is free RAM and the process's own runtime counts; on a
GPU the budget is GPU memory, with the CUDA context. When a job does not fit, gradient checkpointing and then 8-bit
optimiser states (paged, on a GPU) are tried before giving up, and the estimate says which it needs; the chat
recipe turns them on from the same estimate. ``bench/memory.py`` measures every catalog strategy's peak against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .hardware import Hardware
from .strategies import get_strategy
from .tasks import TASKS, get_task

GB = 2**30
RUNTIME_OVERHEAD_GB = 0.6  # a CPU job's process before any model: python, torch, transformers, peft, datasets
CUDA_CONTEXT_GB = 0.6  # a GPU job: the CUDA context and the caching allocator's slack
FIT_SHARE = 0.9  # leave a tenth of the budget free
# An image model's activations are counted as a vision transformer's at 224 pixels (196 patches and the class
# token); a job at another input side keeps them in proportion to its area (a CNN's feature maps scale the same).
IMAGE_SIDE = 224
IMAGE_TOKENS = 197
# What autograd keeps per token per decoder layer, in units of the hidden width: the layer's inputs, norms,
# projections, attention (SDPA: no score matrix) and the MLP's wide activations (counted through mlp_ratio).
SAVED_PER_TOKEN_LAYER = 10
SAVED_PER_TOKEN_LAYER_CHECKPOINTED = 1  # only each layer's input; one layer is recomputed at a time
# A bf16 base under autocast on a CPU keeps more per token than the bf16 width above says: fp32 copies where the
# norms and softmax upcast, the fp32 adapters' inputs, and the CPU allocator's slack between steps. Measured by
# bench/memory.py (2026-11-29, SmolLM2-135M LoRA, batch 4 x 160 tokens): 2.23 GB at the peak of training against
# 1.42 GB estimated with the factor 1, so 3.7 times the activations counted above.
CPU_AUTOCAST_ACTIVATIONS = 3.7
# A decoder trained in fp32 on a CPU (QLoRA there, LoRA on CPUs without bf16 units, a full fine-tune) keeps more
# than the fp32 width above says, for the same reasons. Counted with autograd's saved-tensor hooks on SmolLM2-135M
# (batch 4 x 128): 17.5 hidden widths per token and layer are saved for the backward (the formula says 15.3); the
# step's own transients and the allocator's slack double that in resident memory. Measured by bench/memory.py
# (2026-11-29): QLoRA's training peak 2.50 GB, a full fine-tune's 3.84 GB; 2.2 puts both within 10 %.
CPU_FP32_DECODER_ACTIVATIONS = 2.2


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know of a model; guessed from its size when its config is not at hand.

    Args:
        params_m: parameters in millions.
        hidden, layers, vocab: hidden width, decoder layers, vocabulary size (0 when unknown).
        intermediate: the MLP's width (0: four times the hidden width).
        file_bytes: bytes per parameter in the weight files (2 for bf16/fp16 checkpoints, 4 for fp32).
        tied: the output layer shares the input embeddings' matrix (one vocabulary matrix, not two).
        pixel_bytes, image_bytes: for a convolutional image model, what autograd saves per input pixel of one
            image in training, and per image beyond that (0: count it as a vision transformer's tokens).
    """

    params_m: float
    hidden: int = 0
    layers: int = 0
    vocab: int = 0
    intermediate: int = 0
    file_bytes: float = 2.0
    tied: bool = True
    pixel_bytes: float = 0.0
    image_bytes: float = 0.0

    @property
    def vocabulary_params(self) -> float:
        """The embedding matrix's parameters, and the output layer's when it is a matrix of its own."""
        return float(self.vocab * self.hidden * (1 if self.tied else 2))

    @classmethod
    def guess(cls, params_m: float) -> "ModelShape":
        # Rough transformer proportions: params ~ 12 * layers * hidden^2, layers ~ hidden / 64.
        hidden = int(max(256, round((params_m * 1e6 * 64 / 12) ** (1 / 3) / 64) * 64))
        return cls(params_m, hidden, max(2, hidden // 64), 32000)

    @classmethod
    def from_config(cls, params_m: float, config, file_bytes: float | None = None) -> "ModelShape":
        """From a transformers config (text models; a vision config's hidden size and layers are read too)."""
        text = getattr(config, "text_config", None) or config
        hidden = getattr(text, "hidden_size", 0) or getattr(text, "dim", 0)
        layers = getattr(text, "num_hidden_layers", 0) or getattr(text, "n_layers", 0)
        if not (hidden and layers):
            return cls.guess(params_m)
        dtype = str(getattr(text, "dtype", None) or getattr(text, "torch_dtype", None) or "float32")
        stored = file_bytes or (4.0 if "32" in dtype else 2.0)
        tied = getattr(text, "tie_word_embeddings", None)
        tied = getattr(config, "tie_word_embeddings", True) if tied is None else tied
        return cls(params_m, hidden, layers, getattr(text, "vocab_size", 0) or 0,
                   getattr(text, "intermediate_size", 0) or 0, stored, bool(tied))

    @property
    def mlp_ratio(self) -> float:
        return (self.intermediate / self.hidden) if self.intermediate and self.hidden else 4.0


# Shapes of the big catalog models (hub configs), so the page can say what they need before any download.
CATALOG_SHAPES: dict[str, ModelShape] = {
    "gemma-2-2b-it": ModelShape(2614.3, 2304, 26, 256000, 9216, 2.0),
    "qwen2.5-3b-instruct": ModelShape(3085.9, 2048, 36, 151936, 11008, 2.0),
    "qwen2.5-7b-instruct": ModelShape(7615.6, 3584, 28, 152064, 18944, 2.0, tied=False),
    "mistral-7b-instruct": ModelShape(7248.0, 4096, 32, 32768, 14336, 2.0, tied=False),
    "llama-3.1-8b-instruct": ModelShape(8030.3, 4096, 32, 128256, 14336, 2.0, tied=False),
    "gemma-2-9b-it": ModelShape(9241.7, 3584, 42, 256000, 14336, 2.0),
    "smollm2-135m-instruct": ModelShape(134.5, 576, 30, 49152, 1536, 4.0),  # the studio's fp32 conversion
    "smollm2-1.7b-instruct": ModelShape(1711.4, 2048, 24, 49152, 8192, 2.0),
    "llama-3.2-1b-instruct": ModelShape(1235.8, 2048, 16, 128256, 8192, 2.0),
    # A CNN's feature maps scale with the input's area. Autograd's saved-tensor hooks on one training forward of
    # EfficientNet-Lite0 (batch 16, fp32, 2026-12-06): 8.55 MB per image at 64 px, 28.7 at 128, 83.1 at 224;
    # 1617 bytes per pixel plus 1.9 MB per image fits all three within 2 %.
    "efficientnet-lite0": ModelShape(4.65, 1280, 16, 0, 0, 4.0, pixel_bytes=1617, image_bytes=1.9e6),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimate of one job.

    Args:
        total_gb: the expected peak (RSS on a CPU, allocated GPU memory on a GPU).
        available_gb: the budget it is compared with.
        fits: whether the job fits in ``FIT_SHARE`` of the budget (with the settings below).
        breakdown: GB per part at the peak phase, and that phase's name.
        advice: what to change when it does not fit (or a note when it does).
        gradient_checkpointing: the job needs gradient checkpointing to fit (or the user asked for it).
        optimizer: "adamw_torch", or "paged_adamw_8bit" when only 8-bit optimiser states fit (a GPU).
    """

    total_gb: float
    available_gb: float
    fits: bool
    breakdown: dict[str, float] = field(default_factory=dict)
    advice: str = ""
    gradient_checkpointing: bool = False
    optimizer: str = "adamw_torch"

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:.2f} GB" for k, v in self.breakdown.items() if isinstance(v, float))
        verdict = "fits" if self.fits else "does NOT fit"
        text = f"About {self.total_gb:.1f} GB needed of {self.available_gb:.1f} GB available: {verdict} ({parts})."
        return f"{text} {self.advice}".strip()


def estimate_memory(shape: ModelShape, strategy: str, task: str, batch_size: int, max_length: int,
                    hardware: Hardware, gradient_checkpointing: bool = False,
                    bf16_weights: bool = False, image_side: int | None = None) -> MemoryEstimate:
    """Estimate peak memory for model x strategy x batch x length on ``hardware``; when it does not fit, the
    estimate with gradient checkpointing, then (on a GPU) with 8-bit optimiser states, is returned if that fits.

    Args:
        shape: the model's size and, where known, hidden size, layers and vocabulary.
        strategy: qlora | lora | head-only | full.
        task: chat | text-classification | image-classification.
        batch_size, max_length: per-device batch and tokens per row (images: ignored beyond a patch count).
        hardware: where it runs; on a GPU the budget is GPU memory, on a CPU the free RAM.
        gradient_checkpointing: the user turned it on.
        bf16_weights: the weights are held in bf16 (``presets.bf16_weights``), half the bytes of fp32.
        image_side: the input side an image job trains at (None: the backbone's 224 pixels).
    """
    options = [(gradient_checkpointing, False)]
    if not gradient_checkpointing and not get_strategy(strategy).on_features:
        options.append((True, False))
    if hardware.device == "cuda":
        options.append((True, True))
    available = hardware.gpu_memory_gb if hardware.device == "cuda" else hardware.available_memory_gb
    for checkpointing, eight_bit in options:
        breakdown = _breakdown(shape, strategy, task, batch_size, max_length, hardware, checkpointing, eight_bit,
                               bf16_weights, image_side)
        total = sum(v for v in breakdown.values() if isinstance(v, float))
        if total <= available * FIT_SHARE:
            break
    fits = total <= available * FIT_SHARE
    if not fits:  # report the plain settings' need, with what to change
        checkpointing, eight_bit = options[0]
        breakdown = _breakdown(shape, strategy, task, batch_size, max_length, hardware, checkpointing, False,
                               bf16_weights, image_side)
        total = sum(v for v in breakdown.values() if isinstance(v, float))
    advice = _advice(fits, strategy, batch_size, max_length, shape, hardware, checkpointing and not
                     gradient_checkpointing, eight_bit)
    return MemoryEstimate(round(total, 2), round(available, 2), fits, breakdown, advice, checkpointing,
                          "paged_adamw_8bit" if eight_bit and fits else "adamw_torch")


def _breakdown(shape: ModelShape, strategy: str, task: str, batch_size: int, max_length: int, hardware: Hardware,
               checkpointing: bool, eight_bit: bool, bf16_weights: bool, image_side: int | None = None) -> dict:
    """GB per part at the job's largest phase (load, train or compare), and that phase's name."""
    params = shape.params_m * 1e6
    traits = get_strategy(strategy)
    on_gpu = hardware.device == "cuda"
    if traits.weight_bytes:  # 4-bit: the projections in NF4 (with their scales); the vocabulary matrices stay
        # unquantised and peft's prepare_model_for_kbit_training makes them fp32 (SmolLM2: 113 MB of its 168 MB)
        kept = min(params, shape.vocabulary_params)
        weights = (params - kept) * traits.weight_bytes + kept * 4
    else:
        weights = params * (2 if bf16_weights else 4)
    optimiser = params * traits.trained_share * _state_bytes(traits, on_gpu and bf16_weights, eight_bit)
    image = task in TASKS and get_task(task).modality == "image"
    tokens = batch_size * (image_tokens(image_side) if image else max_length)
    tokens *= get_task(task).sequences if task in TASKS else 1  # a preference pair runs two sequences
    if traits.on_features:
        activations = batch_size * shape.hidden * 4 * 64  # inference only, features cached
    elif image and shape.pixel_bytes:
        side = image_side or IMAGE_SIDE
        activations = batch_size * (shape.pixel_bytes * side * side + shape.image_bytes)
    else:
        width = SAVED_PER_TOKEN_LAYER_CHECKPOINTED if checkpointing else SAVED_PER_TOKEN_LAYER + 2 * shape.mlp_ratio
        unit = 2 if (on_gpu or bf16_weights) else 4
        activations = tokens * shape.hidden * unit * width * shape.layers
        if checkpointing:  # one layer's activations again while it is recomputed
            activations += tokens * shape.hidden * unit * (SAVED_PER_TOKEN_LAYER + 2 * shape.mlp_ratio)
        if bf16_weights and not on_gpu:
            activations *= CPU_AUTOCAST_ACTIVATIONS
        elif not on_gpu and _generates(task):
            activations *= CPU_FP32_DECODER_ACTIVATIONS
    logits = 0.0
    if _generates(task):  # answer positions only, a slice of rows at a time (loss.chunked_linear_ce)
        rows = max(64, min(1024, 2**26 // max(1, shape.vocab)))  # loss.chunk_rows
        logits = min(tokens, rows) * shape.vocab * 6  # bf16 logits of a slice, then fp32 (softmax in place)
    train = weights + optimiser + activations + logits
    loading = weights + (0 if on_gpu else params * shape.file_bytes)  # the file's pages while it is read
    compare = _compare_phase(params, shape, traits, task, on_gpu, bf16_weights, weights)
    phases = {"loading": loading, "training": train, "comparing with the base": compare}
    peak = max(phases, key=phases.get)
    runtime = CUDA_CONTEXT_GB if on_gpu else RUNTIME_OVERHEAD_GB
    parts = {"runtime": runtime, "weights": weights / GB}
    if peak == "training":
        parts.update({"gradients+optimiser": optimiser / GB, "activations": (activations + logits) / GB})
    else:
        parts["more at " + peak] = (phases[peak] - weights) / GB
    return {k: round(v, 3) for k, v in parts.items()}


def image_tokens(side: int | None) -> float:
    """What one image at ``side`` pixels counts as, in tokens (``IMAGE_TOKENS`` at ``IMAGE_SIDE``)."""
    if not side:
        return float(IMAGE_TOKENS)
    return 1 + (IMAGE_TOKENS - 1) * (side / IMAGE_SIDE) ** 2


def _state_bytes(traits, bf16_params: bool, eight_bit: bool) -> float:
    """Bytes per trained weight for its gradient and AdamW's two moments. Adapters train in fp32 (gradient 4,
    moments 8, plus the autocast copy 4); a full fine-tune keeps them in the weights' dtype (fp32 on a CPU, bf16
    on a GPU); 8-bit states take a byte per moment."""
    if not traits.all_weights:
        return 4 + (2 if eight_bit else 8) + 4
    unit = 2 if bf16_params else 4
    return unit + (2 if eight_bit else 2 * unit)


def _compare_phase(params: float, shape: ModelShape, traits, task: str, on_gpu: bool, bf16_weights: bool,
                   trained: float) -> float:
    """Bytes while the tuned model is compared with its base (chat; the optimiser is freed by then): an fp32
    reload of a bf16-trained adapter run on a CPU; a second copy of the base beside a full fine-tune's."""
    if not _generates(task):
        return 0.0
    if traits.all_weights:
        return trained + params * (2 if on_gpu else 4)
    if traits.adapter and not on_gpu and bf16_weights:
        return params * 4 + params * shape.file_bytes
    return 0.0


def _generates(task: str) -> bool:
    """A causal LM tuned for text (chat, preference pairs, documents): it has logits over the vocabulary."""
    return task in TASKS and get_task(task).kind == "generation"


def estimate_job(config, resolved, hardware: Hardware, image_side: int | None = None) -> MemoryEstimate:
    """The estimate for a filled job and its resolved model (what the runner checks before training).

    Args:
        config: the filled ``JobConfig``.
        resolved: its ``core.models.ResolvedModel``.
        hardware: the machine.
        image_side: an image job's input side, chosen from its data (None: the backbone's own).
    """
    return estimate_config(config, model_shape(resolved), hardware, image_side)


def estimate_config(config, shape: ModelShape, hardware: Hardware, image_side: int | None = None) -> MemoryEstimate:
    """The estimate for a filled job and a model shape (``estimate_job``'s, or a catalog entry's before a download)."""
    from .presets import bf16_weights

    t = config.train
    return estimate_memory(shape, config.strategy, config.task, t.batch_size or 1, t.max_length or 256, hardware,
                           t.gradient_checkpointing, bf16_weights(config, hardware), image_side)


def model_shape(resolved) -> ModelShape:
    """A resolved model's shape: from its config file when it has one, its catalog entry's, or a guess (the
    parameters are counted only where the shape needs them: reading an EfficientNet checkpoint costs 34 ms)."""
    from pathlib import Path

    from .models import parameter_count

    entry = getattr(resolved, "entry", None)
    folder = Path(resolved.path)
    params_m = None
    if folder.is_dir() and (folder / "config.json").is_file():
        params_m = parameter_count(resolved) / 1e6
        try:
            from transformers import AutoConfig

            return ModelShape.from_config(params_m, AutoConfig.from_pretrained(folder), _file_bytes(folder, params_m))
        except Exception:  # an unusual config only makes the estimate rougher
            pass
    if entry is not None and entry.key in CATALOG_SHAPES:
        return CATALOG_SHAPES[entry.key]
    if params_m is None:
        params_m = parameter_count(resolved) / 1e6
    return ModelShape.guess(params_m or 1.0)


def _file_bytes(folder, params_m: float) -> float | None:
    """Bytes per parameter of a folder's weight files (what loading maps into memory)."""
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or \
        sum(p.stat().st_size for p in folder.glob("*.bin"))
    return size / (params_m * 1e6) if size and params_m else None


def gpu_needs(shape: ModelShape, batch_size: int = 1, max_length: int = 1024) -> dict[str, float]:
    """The GPU memory (GB) each chat strategy needs at least for ``shape``: bf16, one row of ``max_length``
    tokens a step (gradient accumulation makes the batch), gradient checkpointing on (the catalog's figures)."""
    gpu = Hardware("cuda", "reference GPU", 8, 1024.0, 1024.0, 1024.0, True)
    return {strategy: estimate_memory(shape, strategy, "chat", batch_size, max_length, gpu, True, True).total_gb
            for strategy in ("qlora", "lora", "full")}


def _advice(fits: bool, strategy: str, batch_size: int, max_length: int, shape: ModelShape,
            hardware: Hardware, checkpointing_added: bool = False, eight_bit: bool = False) -> str:
    traits = get_strategy(strategy)
    if fits:
        notes = []
        if checkpointing_added:
            notes.append("gradient checkpointing will be on to fit (about a third slower)")
        if eight_bit:
            notes.append("the optimiser keeps 8-bit paged states to fit")
        if traits.quantised and hardware.device == "cpu" and shape.params_m < 1000:
            notes.append("QLoRA saves little memory on a CPU with a model this small and is about 25 % slower than "
                         "LoRA: it is for models that do not fit otherwise")
        return (" ".join(n[0].upper() + n[1:] + "." for n in notes)) if notes else ""
    tips = []
    if batch_size > 1:
        tips.append(f"lower the batch size to {max(1, batch_size // 2)} (and raise gradient accumulation)")
    if max_length > 256:
        tips.append(f"lower the max length to {max(128, max_length // 2)}")
    if traits.all_weights:
        tips.append("use LoRA instead of a full fine-tune")
    if traits.adapter and not traits.quantised and shape.params_m > 1000:
        tips.append("use QLoRA")
    if hardware.device == "cuda":
        tips.append("use several GPUs (`studio train CONFIG --gpus N` shards the model over them)")
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

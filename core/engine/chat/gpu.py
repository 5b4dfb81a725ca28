"""The chat recipe's choices that differ on a GPU, each a small function a CPU test can check.

On a GPU the recipe trains in bf16 (fp16 on cards without bf16), QLoRA computes in that dtype, attention is
FlashAttention 2 when the ``flash_attn`` package is installed (SDPA otherwise), conversations are packed into one
row with restarting position ids (no padding at all: exact, because the attention keeps each conversation to
itself), Liger's fused kernels replace the norms, rotary embedding and MLP activation when ``liger_kernel`` is
installed, and the memory estimate chooses gradient checkpointing and paged 8-bit optimiser states when the job
would not fit otherwise. On a CPU none of this applies: padding after grouping by length measured faster than
packing there (``bench/chat_lora.py``).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import torch

# Architectures whose attention keeps packed conversations apart from restarting position ids (FlashAttention's
# variable-length path, or the block-diagonal mask transformers builds for SDPA/eager).
PACKING_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "granite", "olmo2")
LIGER_PATCHES = {"rope": True, "rms_norm": True, "swiglu": True, "cross_entropy": False,
                 "fused_linear_cross_entropy": False}  # the loss stays ours: answer positions only, in slices


def installed(package: str) -> bool:
    """Whether ``package`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def compute_dtype(hardware) -> torch.dtype:
    """The dtype matmuls run in: bf16 where the device has it, fp16 on an older GPU, fp32 on a CPU without."""
    if hardware is not None and hardware.device == "cuda":
        return torch.bfloat16 if hardware.bf16 else torch.float16
    return torch.bfloat16 if hardware is not None and hardware.bf16 else torch.float32


def attention_implementation(hardware, flash_installed: bool | None = None) -> str:
    """``flash_attention_2`` on a GPU with ``flash_attn`` installed, else ``sdpa`` (PyTorch's fused attention)."""
    flash = installed("flash_attn") if flash_installed is None else flash_installed
    return "flash_attention_2" if hardware is not None and hardware.device == "cuda" and flash else "sdpa"


def packing_is_exact(model) -> bool:
    """Whether packed rows with restarting position ids train exactly like separate rows for ``model``."""
    config = getattr(model, "config", None)
    return getattr(config, "model_type", "") in PACKING_ARCHITECTURES and \
        getattr(config, "_attn_implementation", "sdpa") in ("flash_attention_2", "sdpa", "eager", "flex_attention")


def use_packing(hardware, model) -> bool:
    """Pack conversations without padding: on a GPU, where it is exact."""
    return hardware is not None and hardware.device == "cuda" and packing_is_exact(model)


def apply_liger(model, hardware, module=None) -> bool:
    """Patch ``model`` with Liger's fused kernels (norms, rotary, SwiGLU) on a GPU when liger_kernel is installed.

    Args:
        model: the loaded transformers model (before peft wraps it).
        hardware: the machine (Liger's kernels are Triton: GPU only).
        module: ``liger_kernel.transformers`` (tests pass a stand-in); imported when None.
    Returns whether it patched.
    """
    if hardware is None or hardware.device != "cuda":
        return False
    if module is None:
        if not installed("liger_kernel"):
            return False
        import liger_kernel.transformers as module
    apply = getattr(module, "_apply_liger_kernel_to_instance", None)
    if apply is None:
        return False
    try:
        apply(model=model, **LIGER_PATCHES)
    except (TypeError, ValueError, NotImplementedError):  # an architecture Liger does not cover: plain kernels
        return False
    return True


@dataclass(frozen=True)
class DeviceChoices:
    """What a chat run does differently on its device.

    Args:
        packing: pack each batch into one row (no padding).
        attention: the attention implementation to set (None: keep the model's).
        gradient_checkpointing: recompute activations in the backward pass (the estimate's call, or the user's).
        optimizer: the Trainer's ``optim`` ("adamw_torch" or "paged_adamw_8bit").
        notes: lines for the run's log.
    """

    packing: bool = False
    attention: str | None = None
    gradient_checkpointing: bool = False
    optimizer: str = "adamw_torch"
    notes: list[str] = field(default_factory=list)


def device_choices(config, hardware, estimate=None, bitsandbytes: bool | None = None) -> DeviceChoices:
    """The device-dependent settings of a chat run.

    Args:
        config: the filled ``JobConfig``.
        hardware: the machine.
        estimate: its ``core.memory.MemoryEstimate`` (gradient checkpointing and the optimiser come from it).
        bitsandbytes: whether bitsandbytes is importable (8-bit optimisers); checked when None.
    """
    notes = []
    checkpointing = bool(config.train.gradient_checkpointing)
    if estimate is not None and estimate.gradient_checkpointing and not checkpointing:
        checkpointing = True
        notes.append("Gradient checkpointing is on: the memory estimate says the job needs it to fit.")
    optimizer = "adamw_torch"
    on_gpu = hardware is not None and hardware.device == "cuda"
    if estimate is not None and estimate.optimizer != "adamw_torch" and on_gpu:
        if bitsandbytes if bitsandbytes is not None else installed("bitsandbytes"):
            optimizer = estimate.optimizer
            notes.append("The optimiser keeps paged 8-bit states: full-precision ones would not fit.")
    attention = attention_implementation(hardware) if on_gpu else None
    return DeviceChoices(packing=on_gpu, attention=attention, gradient_checkpointing=checkpointing,
                         optimizer=optimizer, notes=notes)

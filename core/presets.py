"""Presets chosen from the data: every training setting the user left empty gets a value here.

The numbers are data, in one table per task and strategy, measured on 2 CPU cores (see the README's tables):
LoRA on a small encoder needs a far higher learning rate than a full fine-tune, and head-only epochs are
almost free once features are cached, so the presets differ more between strategies than between tasks.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .config import JobConfig, TrainConfig
from .hardware import Hardware
from .strategies import get_strategy
from .tasks import TASKS, get_task


@dataclass(frozen=True)
class Recipe:
    learning_rate: float
    epochs: dict  # preset -> epochs
    batch_size: int
    lora_r: int | None = None
    beta: float | None = None  # preference tuning: DPO/ORPO beta
    max_length: int | None = None  # a fixed length (documents: the block length); else chosen from the data


# (task, strategy) -> recipe. "quick" is for a first look, "thorough" for the final model.
RECIPES: dict[tuple[str, str], Recipe] = {
    ("chat", "lora"): Recipe(1e-3, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8),
    ("chat", "qlora"): Recipe(1e-3, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8),
    ("chat", "full"): Recipe(5e-5, {"quick": 1, "balanced": 2, "thorough": 3}, 4),
    # preference pairs, LoRA r=8 on SmolLM2-135M (README, "Preference tuning"); beta 0.1 as in the DPO paper
    ("preference", "dpo"): Recipe(5e-4, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8, beta=0.1),
    ("preference", "orpo"): Recipe(5e-4, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8, beta=0.1),
    # documents: blocks of 256 tokens (core/data/blocks.py DEFAULT_BLOCK_TOKENS counts the same blocks)
    ("text-completion", "lora"): Recipe(1e-3, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8, max_length=256),
    ("text-completion", "qlora"): Recipe(1e-3, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8, max_length=256),
    ("text-completion", "full"): Recipe(5e-5, {"quick": 1, "balanced": 2, "thorough": 3}, 4, max_length=256),
    # auto: the search's fine-tunes take the lora/full rows' learning rates; its time budget is by preset
    # (core/engine/classify/search.py); these fill the shared settings (batch, max length, threads).
    ("text-classification", "auto"): Recipe(1e-2, {"quick": 1, "balanced": 1, "thorough": 1}, 16),
    ("image-classification", "auto"): Recipe(1e-2, {"quick": 1, "balanced": 1, "thorough": 1}, 16),
    ("text-classification", "head-only"): Recipe(1e-2, {"quick": 30, "balanced": 60, "thorough": 150}, 64),
    ("text-classification", "lora"): Recipe(2e-3, {"quick": 3, "balanced": 8, "thorough": 12}, 16, 8),
    ("text-classification", "full"): Recipe(1e-4, {"quick": 2, "balanced": 6, "thorough": 10}, 16),
    ("image-classification", "head-only"): Recipe(1e-2, {"quick": 30, "balanced": 60, "thorough": 150}, 64),
    ("image-classification", "lora"): Recipe(2e-3, {"quick": 3, "balanced": 6, "thorough": 10}, 16, 8),
    ("image-classification", "full"): Recipe(3e-4, {"quick": 3, "balanced": 6, "thorough": 10}, 16),
    # More adapters (scripts/compare_adapters.py chose the learning rates on the bundled examples).
    ("chat", "dora"): Recipe(1e-3, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 8),
    ("chat", "rslora"): Recipe(3e-4, {"quick": 1, "balanced": 2, "thorough": 3}, 4, 16),
    ("chat", "ia3"): Recipe(1e-2, {"quick": 1, "balanced": 2, "thorough": 3}, 4),
    ("chat", "prefix"): Recipe(1e-2, {"quick": 1, "balanced": 2, "thorough": 3}, 4),
    ("text-classification", "dora"): Recipe(2e-3, {"quick": 3, "balanced": 8, "thorough": 12}, 16, 8),
    ("text-classification", "rslora"): Recipe(1e-3, {"quick": 3, "balanced": 8, "thorough": 12}, 16, 16),
    ("text-classification", "ia3"): Recipe(1e-2, {"quick": 3, "balanced": 8, "thorough": 12}, 16),
    ("image-classification", "dora"): Recipe(2e-3, {"quick": 3, "balanced": 6, "thorough": 10}, 16, 8),
    ("image-classification", "rslora"): Recipe(1e-3, {"quick": 3, "balanced": 6, "thorough": 10}, 16, 16),
    ("image-classification", "ia3"): Recipe(1e-2, {"quick": 3, "balanced": 6, "thorough": 10}, 16),
    # Regression: a head on cached features (head-only fits ridge regression in closed form: its epochs are unused)
    # or a fine-tune of a one-output head on standardised targets, at the classifiers' learning rates.
    ("text-regression", "auto"): Recipe(1e-2, {"quick": 1, "balanced": 1, "thorough": 1}, 16),
    ("image-regression", "auto"): Recipe(1e-2, {"quick": 1, "balanced": 1, "thorough": 1}, 16),
    ("text-regression", "head-only"): Recipe(1e-2, {"quick": 1, "balanced": 1, "thorough": 1}, 64),
    ("image-regression", "head-only"): Recipe(1e-2, {"quick": 1, "balanced": 1, "thorough": 1}, 64),
    ("text-regression", "lora"): Recipe(2e-3, {"quick": 3, "balanced": 8, "thorough": 12}, 16, 8),
    ("text-regression", "full"): Recipe(1e-4, {"quick": 2, "balanced": 6, "thorough": 10}, 16),
    ("text-regression", "dora"): Recipe(2e-3, {"quick": 3, "balanced": 8, "thorough": 12}, 16, 8),
    ("text-regression", "rslora"): Recipe(1e-3, {"quick": 3, "balanced": 8, "thorough": 12}, 16, 16),
    ("text-regression", "ia3"): Recipe(1e-2, {"quick": 3, "balanced": 8, "thorough": 12}, 16),
    ("image-regression", "lora"): Recipe(2e-3, {"quick": 3, "balanced": 6, "thorough": 10}, 16, 8),
    ("image-regression", "full"): Recipe(3e-4, {"quick": 3, "balanced": 6, "thorough": 10}, 16),
    ("image-regression", "dora"): Recipe(2e-3, {"quick": 3, "balanced": 6, "thorough": 10}, 16, 8),
    ("image-regression", "rslora"): Recipe(1e-3, {"quick": 3, "balanced": 6, "thorough": 10}, 16, 16),
    ("image-regression", "ia3"): Recipe(1e-2, {"quick": 3, "balanced": 6, "thorough": 10}, 16),
}


MAX_LENGTH_CAP = {"cpu": 512, "cuda": 2048}


def choose_max_length(token_lengths: dict | None, device: str, task: str) -> int:
    """The 98th percentile of the rendered lengths, rounded up to 32, within [64, cap] (few rows truncated)."""
    cap = MAX_LENGTH_CAP.get(device, 512)
    if task in TASKS and get_task(task).modality == "image":
        return 0
    lengths = token_lengths or {}
    p = lengths.get("p98") or lengths.get("p99") or lengths.get("p95") or lengths.get("max")
    if not p:
        return min(cap, 256)
    return int(min(cap, max(64, math.ceil(float(p) / 32) * 32)))


# torch.compile of the decoder layers (core/engine/chat/compile.py) against the eager fast path (fused LoRA) on a
# 2-core CPU, bench/chat_lora.py: compiling costs about a minute the first time on a machine and seconds once the
# kernel cache in the studio home holds the run's kernels; the break-even the bench measures (README) sets these.
COMPILE_MIN_MICRO_BATCHES_COLD = 300  # a run this long pays for compiling from scratch
COMPILE_MIN_MICRO_BATCHES_WARM = 24  # a run this long pays for compiling from a warm kernel cache


def use_compile(config: JobConfig, total_steps: int, grad_accum: int, hardware: Hardware) -> bool | None:
    """Whether a job trains through torch.compile: True, False, or None for "when this machine's kernel cache
    holds the run's kernels", which the chat recipe checks when it starts (``core.engine.chat.speed``)."""
    if config.train.compile is not None:
        return config.train.compile
    from .hardware import cxx_compiler

    if config.task != "chat" or hardware.device != "cpu" or cxx_compiler() is None:
        return False
    micro_batches = total_steps * grad_accum
    if micro_batches >= COMPILE_MIN_MICRO_BATCHES_COLD:
        return True
    return None if micro_batches >= COMPILE_MIN_MICRO_BATCHES_WARM else False


def choose_precision(config: JobConfig, hardware: Hardware | None) -> str:
    """fp32 or bf16 (mixed precision) for a job whose user did not say.

    On a GPU with bf16 support every task trains in bf16, as before. On a CPU with bf16 matrix units (see
    ``hardware.BF16_CPU_FLAGS``) chat LoRA does: the frozen base is kept in bf16 and multiplied there, the adapters
    and their optimiser stay fp32 (bench/chat_lora.py on a 2-core EPYC: 1.4-1.6x the fp32 tokens/s; validation
    loss on the bundled chat example 1.464 against 1.449 in fp32; see the README). Other CPU jobs stay fp32,
    where bf16 is unmeasured or slower.
    """
    if config.train.precision is not None:
        return config.train.precision
    if hardware is None:
        return "fp32"
    if hardware.device == "cuda":
        return "bf16" if hardware.bf16 else "fp32"
    strategy = get_strategy(config.strategy)
    return "bf16" if hardware.bf16 and config.task == "chat" and strategy.adapter and not strategy.quantised \
        else "fp32"


def bf16_weights(config: JobConfig, hardware: Hardware | None) -> bool:
    """Whether the model's weights are loaded in bf16: when training in bf16, except a full fine-tune on a CPU,
    which keeps fp32 weights for its optimiser (autocast still multiplies in bf16)."""
    if choose_precision(config, hardware) != "bf16":
        return False
    return hardware is not None and (hardware.device == "cuda" or not get_strategy(config.strategy).all_weights)


def fill_presets(config: JobConfig, n_train: int, hardware: Hardware, token_lengths: dict | None = None) -> JobConfig:
    """Return a copy of ``config`` with every empty training setting filled from the data and the machine.

    Args:
        config: the job as the user set it; values they set are kept.
        n_train: rows (or images) in the training split.
        hardware: the machine the job runs on (batch size and length caps differ on a GPU).
        token_lengths: the data summary's token length statistics (p95/p98/p99/max), if any.
    """
    recipe = RECIPES.get((config.task, config.strategy))
    if recipe is None:
        return config
    t = config.train
    strategy = get_strategy(config.strategy)
    on_gpu = hardware.device == "cuda"
    batch = t.batch_size or (recipe.batch_size * (2 if on_gpu else 1))
    batch = max(1, min(batch, max(1, n_train)))
    accum = t.grad_accum or (2 if config.task == "chat" and not on_gpu and n_train >= 64 else 1)
    epochs = t.epochs if t.epochs is not None else recipe.epochs.get(t.preset, recipe.epochs["balanced"])
    steps_per_epoch = max(1, math.ceil(n_train / (batch * accum)))
    total = t.max_steps or max(1, math.ceil(steps_per_epoch * epochs))
    # Chat evaluation is a forward pass over held-out conversations: about six points on the curve is enough.
    eval_every = t.eval_every or (min(total, max(5, total // 6)) if config.task == "chat" else max(1, total // 8))
    filled = dataclasses.replace(
        t,
        epochs=float(epochs),
        learning_rate=t.learning_rate or recipe.learning_rate,
        batch_size=batch,
        grad_accum=accum,
        max_length=t.max_length or recipe.max_length
        or (choose_max_length(token_lengths, hardware.device, config.task) or None),
        beta=t.beta if t.beta is not None else recipe.beta,
        lora_r=t.lora_r or recipe.lora_r if strategy.adapter else t.lora_r,
        lora_alpha=t.lora_alpha or ((t.lora_r or recipe.lora_r or 8) * 2 if strategy.adapter else None),
        eval_every=eval_every,
        save_every=t.save_every or max(eval_every, total // 4, 1),
        threads=t.threads or (None if on_gpu else hardware.train_threads),
        compile=use_compile(config, total, accum, hardware),
        precision=choose_precision(config, hardware),
    )
    return dataclasses.replace(config, train=filled)


# Seconds the automatic search (``strategy: auto``) may take for a few hundred rows on a 2-core CPU, by preset; more
# rows get proportionally more (features take longer to compute), and the user's time limit caps it.
SEARCH_BUDGET_S = {"quick": 60.0, "balanced": 110.0, "thorough": 360.0}
SEARCH_BUDGET_ROWS = 500


def search_budget_seconds(preset: str, n_train: int, max_minutes: float | None) -> float:
    """The automatic search's time budget in seconds, stated to the user before it starts (the settings step
    shows it; the search's first log line repeats it).

    Args:
        preset: quick | balanced | thorough.
        n_train: training rows.
        max_minutes: the job's time limit, if any (the budget never exceeds it).
    """
    budget = SEARCH_BUDGET_S.get(preset, SEARCH_BUDGET_S["balanced"]) * max(1.0, n_train / SEARCH_BUDGET_ROWS)
    if max_minutes:
        budget = min(budget, max_minutes * 60.0)
    return budget


def estimated_steps(train: TrainConfig, n_train: int) -> int:
    """Optimizer steps the filled-in settings will run."""
    if train.max_steps:
        return train.max_steps
    per_epoch = math.ceil(n_train / ((train.batch_size or 1) * (train.grad_accum or 1)))
    return max(1, math.ceil(per_epoch * (train.epochs or 1)))

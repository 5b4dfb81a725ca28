"""What the recipes that tune a causal language model beside chat share (preference pairs, documents): threads,
the tokenizer, the base model (in 4 bits for QLoRA), the trained weights, the base beside the tuned model for the
comparison, and greedy answers.

Evaluation scores in fp32 on a CPU (what the playground and the exports use); for adapters the base is the same
weights with the adapter switched off, so the comparison costs no second model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..heap import release_memory
from ..models.templates import render
from ..presets import bf16_weights
from ..strategies import get_strategy, quantization_config
from .context import TrainContext
from .tracking import trainer_report_to


def hardware(ctx: TrainContext):
    """The job's machine, detected once."""
    if ctx.hardware is None:
        from ..hardware import detect_hardware
        ctx.hardware = detect_hardware()
    return ctx.hardware


def trainer_fields(ctx: TrainContext, evaluating: bool, learning_rate: float) -> dict:
    """The ``TrainingArguments`` fields (TRL's configs extend them) these recipes set the same way: the run's
    checkpoints, the job's numbers (``learning_rate`` when it names none), cosine schedule, one log line a step,
    evaluation and checkpoints every ``eval_every``, the run's trackers, and no worker processes."""
    t, machine = ctx.config.train, hardware(ctx)
    eval_every = t.eval_every or 50
    return dict(
        output_dir=str(ctx.run.checkpoints), num_train_epochs=t.epochs or 1.0, max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate or learning_rate, per_device_train_batch_size=t.batch_size or 4,
        per_device_eval_batch_size=t.batch_size or 4, gradient_accumulation_steps=t.grad_accum or 1,
        weight_decay=t.weight_decay, warmup_steps=t.warmup_ratio, lr_scheduler_type="cosine", logging_steps=1,
        eval_strategy="steps" if evaluating else "no", eval_steps=eval_every, save_strategy="steps",
        save_steps=t.save_every or max(eval_every, 50), save_total_limit=2, seed=t.seed,
        use_cpu=machine.device == "cpu", bf16=t.precision == "bf16", report_to=trainer_report_to(ctx.config),
        run_name=ctx.run.name, disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
        prediction_loss_only=True, ddp_find_unused_parameters=False,
    )


def set_threads(ctx: TrainContext) -> None:
    """torch threads as the job says (on a CPU: the machine's training threads when the job does not say)."""
    machine = hardware(ctx)
    threads = ctx.config.train.threads or (machine.train_threads if machine.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)


def load_tokenizer(ctx: TrainContext):
    """The runner's tokenizer when it loaded one, else the model's; the end-of-text token pads when none does."""
    from ..models import load_tokenizer as load

    tokenizer = ctx.tokenizer or load(ctx.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def training_dtype(ctx: TrainContext) -> torch.dtype:
    return torch.bfloat16 if bf16_weights(ctx.config, hardware(ctx)) else torch.float32


def load_base(ctx: TrainContext, quantized: bool | None = None, dtype: torch.dtype | None = None):
    """The base causal LM: in 4 bits when the strategy is quantised (QLoRA), else in ``dtype`` (default: the
    training precision's).

    Args:
        ctx: the job.
        quantized: override the strategy's choice (the comparison loads an unquantised base).
        dtype: the weights' dtype.
    """
    from ..models import load_causal_lm

    if quantized is None:
        quantized = get_strategy(ctx.config.strategy).quantised
    if not quantized:
        return load_causal_lm(ctx.model, dtype=dtype or training_dtype(ctx))
    device_map = {"": 0} if hardware(ctx).device == "cuda" else "cpu"
    return load_causal_lm(ctx.model, dtype=training_dtype(ctx), quantization_config=quantization_config(),
                          device_map=device_map)


def scoring_dtype(ctx: TrainContext) -> torch.dtype:
    """fp32 on a CPU (bf16 only ever sped up training there); the training precision on a GPU."""
    return training_dtype(ctx) if hardware(ctx).device == "cuda" else torch.float32


def load_trained(ctx: TrainContext):
    """The model this run saved in ``run/model`` (an adapter on its base, or the whole fine-tuned model), in eval
    mode at the scoring precision.

    Raises:
        FileNotFoundError: the run has no saved model.
    """
    out = ctx.run.model
    if not out.is_dir():
        raise FileNotFoundError(f"{out} holds no trained model: train the run first (or resume it).")
    dtype = scoring_dtype(ctx)
    if (out / "adapter_config.json").is_file():
        return load_adapter(ctx, out, dtype)
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(out, dtype=dtype).eval()


def load_adapter(ctx: TrainContext, folder: Path, dtype: torch.dtype):
    """The saved adapter in ``folder`` on the base model loaded in ``dtype``."""
    from peft import PeftModel

    quantized = get_strategy(ctx.config.strategy).quantised and hardware(ctx).device == "cuda"
    return PeftModel.from_pretrained(load_base(ctx, quantized=quantized, dtype=dtype), folder).eval()


class base_of:
    """The base model beside a tuned one: the adapter switched off, or (a full fine-tune) a separate load freed
    on exit.

    Args:
        ctx: the job (to load the base of a full fine-tune).
        model: the tuned model.
    """

    def __init__(self, ctx: TrainContext, model):
        self.ctx, self.model, self._switch, self._loaded = ctx, model, None, None

    def __enter__(self):
        if hasattr(self.model, "disable_adapter"):
            self._switch = self.model.disable_adapter()
            self._switch.__enter__()
            return self.model
        self._loaded = load_base(self.ctx, quantized=False, dtype=scoring_dtype(self.ctx)).eval()
        return self._loaded

    def __exit__(self, *exc):
        if self._switch is not None:
            self._switch.__exit__(*exc)
        self._loaded = None
        release_memory()
        return False


@torch.no_grad()
def answer(model, tokenizer, messages: list[dict], max_new_tokens: int) -> str:
    """The model's greedy answer to a conversation (rendered with its chat template)."""
    return continuation(model, tokenizer, render(tokenizer, messages, add_generation_prompt=True), max_new_tokens)


@dataclass(frozen=True)
class Answer:
    """A generated answer, and whether the model ended it (an end-of-turn token) rather than the token limit."""

    text: str
    finished: bool


def answers(model, tokenizer, questions: list[str], max_new_tokens: int, batch: int = 12) -> list[str]:
    """Greedy answers to single-turn questions, generated in left-padded batches."""
    return [a.text for a in generate_answers(model, tokenizer, questions, max_new_tokens, batch)]


@torch.no_grad()
def generate_answers(model, tokenizer, questions: list[str], max_new_tokens: int, batch: int = 12,
                     progress: Callable[[int, int], None] | None = None) -> list[Answer]:
    """Greedy answers to single-turn questions, generated in left-padded batches, each saying whether it ended;
    ``progress(done, total)`` after each batch."""
    side, was_training = tokenizer.padding_side, model.training
    ends = _end_ids(model, tokenizer)
    tokenizer.padding_side = "left"
    model.eval()
    out = []
    try:
        for start in range(0, len(questions), batch):
            texts = [render(tokenizer, [{"role": "user", "content": q}], add_generation_prompt=True)
                     for q in questions[start:start + batch]]
            enc = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True).to(device(model))
            generated = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                       pad_token_id=tokenizer.pad_token_id)
            for g in generated[:, enc["input_ids"].shape[1]:]:
                out.append(Answer(tokenizer.decode(g, skip_special_tokens=True).strip(),
                                  any(int(t) in ends for t in g)))
            if progress is not None:
                progress(len(out), len(questions))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def _end_ids(model, tokenizer) -> set[int]:
    """The token ids that end an answer: the generation config's end tokens and the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {int(i) for i in ids if i is not None}


@torch.no_grad()
def continuation(model, tokenizer, text: str, max_new_tokens: int) -> str:
    """The model's greedy continuation of ``text`` (no special tokens added), decoded without special tokens."""
    enc = tokenizer(text, add_special_tokens=False, return_tensors="pt").to(device(model))
    was_training = model.training
    model.eval()
    try:
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id)
    finally:
        model.train(was_training)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def device(model) -> torch.device:
    return next(model.parameters()).device


def relative(new: float, old: float) -> float | None:
    """(new - old) / old, or None when either is not a finite number or old is 0."""
    if new is None or old is None or not (math.isfinite(new) and math.isfinite(old)) or old == 0:
        return None
    return (new - old) / old


def is_main(trainer) -> bool:
    """Whether this process writes the run folder (rank 0, or the only process)."""
    if trainer is not None:
        return trainer.is_world_process_zero()
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) \
        or torch.distributed.get_rank() == 0


def free(recipe) -> None:
    """Drop a recipe's model, trainer and data so repeated jobs in one process do not grow memory."""
    for name in ("trainer", "model", "train_rows", "val_rows", "train_data", "eval_data"):
        if hasattr(recipe, name):
            setattr(recipe, name, None)
    release_memory()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def save(recipe) -> None:
    """Write the adapter (or the whole model, safetensors) and the tokenizer to the run's model folder."""
    ctx = recipe.ctx
    if not is_main(recipe.trainer):
        return
    ctx.reporter.phase("saving", f"Saving the model to {ctx.run.model}")
    out = ctx.run.model
    out.mkdir(parents=True, exist_ok=True)
    model = recipe.trainer.accelerator.unwrap_model(recipe.model) if recipe.trainer else recipe.model
    model.save_pretrained(out)
    recipe.tokenizer.save_pretrained(out)

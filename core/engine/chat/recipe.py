"""Chat (instruction) tuning: LoRA, QLoRA or a full fine-tune of a causal LM on conversations.

The loss is on assistant answers only. Batches are grouped by length (so there is almost no padding) and the
vocabulary projection runs only where there is a target. On 2 CPU cores that measured faster than packing
conversations into one row: the block-diagonal attention of a packed row costs more than the little padding
left after grouping (see ``bench/chat_lora.py``).

Precision and compilation come from the filled config (``core/presets.py``): on a CPU with bf16 matrix units
LoRA trains with the frozen base in bf16 and fp32 adapters under autocast, and the evaluation reloads the base in
fp32; long runs compile the decoder layers after the first step (``compile_layers.py``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import torch
from transformers import TrainingArguments
from transformers.trainer_callback import PrinterCallback, TrainerCallback

from ...heap import release_memory
from ...models.templates import render
from ...presets import bf16_weights, choose_precision
from ...strategies import apply_strategy, get_strategy, quantization_config, quantized_device_map, trainable_parameters
from ..callbacks import ItemCounter, ReporterCallback
from ..context import TrainContext, TrainOutcome
from ..tracking import trainer_report_to
from . import probe, replay
from .collate import PackedCollator, PaddedCollator, TokenRows, encode_all
from .compile import eager
from .loss import ChatTrainer, answer_loss
from .gpu import DeviceChoices, apply_liger, compute_dtype, device_choices, use_packing
from .speed import FastPath, start_background_warmup

EVAL_ROWS_DURING_TRAINING = 32  # eval points on the curve stay cheap (a forward pass each)
EVAL_ROWS_FINAL = 256
GENERATION_EXAMPLES = 4
GENERATION_TOKENS = 64
# Early stopping: training stops after this many evaluations in a row without a lower validation loss, and the
# weights of the lowest one are put back (those that train; kept in memory up to KEEP_BEST_MAX_ELEMENTS numbers).
EARLY_STOPPING_PATIENCE = 2
KEEP_BEST_MAX_ELEMENTS = 60_000_000


class KeepBest(TrainerCallback):
    """Stops training when the validation loss turns up and keeps the weights of its lowest point.

    After each evaluation: a lower loss (by more than ``min_delta``) snapshots the trainable weights (the adapters
    for LoRA: a few MB); ``patience`` evaluations in a row without one stop the training. ``restore`` puts the best
    snapshot back when a later evaluation was worse (when the last evaluation was the best, the steps after it
    went on in the same direction and are kept).

    Args:
        model: the model in training (its ``requires_grad`` parameters are snapshotted, in place on restore).
        patience: evaluations without improvement before stopping.
        min_delta: how much lower a loss must be to count as better.
        max_elements: skip snapshots (early stopping still works) when more numbers than this train.
    """

    def __init__(self, model, patience: int = EARLY_STOPPING_PATIENCE, min_delta: float = 1e-4,
                 max_elements: int = KEEP_BEST_MAX_ELEMENTS) -> None:
        self.model = model
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.snapshots = trainable <= max_elements
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.worse = 0
        self.stopped_at: int | None = None
        self.history: list[tuple[int, float]] = []
        self._state: dict[str, torch.Tensor] | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if loss is None or not math.isfinite(loss):
            return
        self.history.append((state.global_step, float(loss)))
        if self.best_loss is None or loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_step, self.worse = float(loss), state.global_step, 0
            if self.snapshots:
                self._state = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            return
        self.worse += 1
        if self.worse >= self.patience and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped_at = state.global_step

    def restore(self) -> bool:
        """Put the best evaluation's weights back when a later evaluation was worse; whether it did."""
        if not self.worse or self._state is None:
            return False
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if name in self._state:
                    param.copy_(self._state[name])
        self._state = None
        return True

    def summary(self) -> str | None:
        """One sentence for the log, or None when no evaluation ran."""
        if self.best_loss is None:
            return None
        text = f"Validation loss was lowest at step {self.best_step} ({self.best_loss:.4f})"
        if self.stopped_at is not None:
            text += (f"; it rose for {self.patience} evaluations in a row, so training stopped early at step "
                     f"{self.stopped_at}")
        return text + "."


class ChatRecipe:
    """setup -> train -> save -> evaluate -> cleanup for a chat job (or load_trained -> evaluate).

    Args:
        ctx: the job, its data (``messages`` datasets), its resolved model, run folder and reporter.
    """

    def __init__(self, ctx: TrainContext):
        self.ctx = ctx
        self.tokenizer = None
        self.model = None
        self.trainer = None
        self.train_rows: TokenRows | None = None
        self.replayed: list[dict[str, Any]] = []
        self.val_rows: TokenRows | None = None
        self.fast: FastPath | None = None
        self.device: DeviceChoices | None = None

    # --- setup -------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Load the tokenizer and model, wrap it for the strategy, and tokenise both splits."""
        self._set_threads()
        cfg = self.ctx.config
        self.tokenizer = self._load_tokenizer()
        self.ctx.reporter.phase("loading", f"Loading {cfg.model} for {cfg.strategy} training")
        model = self._load_base()
        model = self._for_device(model)
        train = dataclasses.replace(cfg.train, gradient_checkpointing=self.device.gradient_checkpointing)
        model = apply_strategy(cfg.strategy, model, "chat", train, tokenizer=self.tokenizer)
        model.config.use_cache = False
        trainable, total = trainable_parameters(model)
        self.ctx.reporter.line(f"Training {trainable:,} of {total:,} parameters ({cfg.strategy}).")
        self.model = model
        self._tokenise()

    def _for_device(self, model):
        """Attention, Liger kernels, packing, checkpointing and optimiser for this device (``gpu.py``)."""
        from ...memory import estimate_job

        hardware = self._hardware()
        choices = device_choices(self.ctx.config, hardware, estimate_job(self.ctx.config, self.ctx.model, hardware))
        if choices.attention and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(choices.attention)
        if apply_liger(model, hardware):
            choices.notes.append("Liger's fused kernels replace the norms, rotary embedding and SwiGLU.")
        packable = get_strategy(self.ctx.config.strategy).packable
        self.device = dataclasses.replace(choices, packing=packable and use_packing(hardware, model))
        for note in self.device.notes:
            self.ctx.reporter.line(note)
        return model

    def _set_threads(self) -> None:
        hardware = self._hardware()
        threads = self.ctx.config.train.threads or (hardware.train_threads if hardware.device == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)

    def _hardware(self):
        if self.ctx.hardware is None:
            from ...hardware import detect_hardware
            self.ctx.hardware = detect_hardware()
        return self.ctx.hardware

    def _load_tokenizer(self):
        from ...models import load_tokenizer

        tokenizer = self.ctx.tokenizer or load_tokenizer(self.ctx.model)  # the runner's, when it loaded one
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def _precision(self) -> str:
        return choose_precision(self.ctx.config, self._hardware())

    def _dtype(self) -> torch.dtype:
        return torch.bfloat16 if bf16_weights(self.ctx.config, self._hardware()) else torch.float32

    def _load_base(self, quantized: bool | None = None, dtype: torch.dtype | None = None):
        """The base model; in 4 bits for QLoRA; in ``dtype`` (default: the training precision's) otherwise."""
        from ...models import load_causal_lm

        if quantized is None:
            quantized = get_strategy(self.ctx.config.strategy).quantised
        if not quantized:
            return load_causal_lm(self.ctx.model, dtype=dtype or self._dtype())
        hardware = self._hardware()
        sharded = _sharded()
        return load_causal_lm(self.ctx.model, dtype=self._dtype(), device_map=quantized_device_map(hardware, sharded),
                              quantization_config=quantization_config(compute_dtype(hardware), sharded))

    def _tokenise(self) -> None:
        data, max_length = self.ctx.data, self.ctx.config.train.max_length
        self.ctx.reporter.phase("tokenizing", f"Applying the chat template to {len(data.train)} conversations")
        rows = encode_all(self.tokenizer, data.train["messages"], max_length)
        if not rows:
            raise ValueError("No training conversation has an assistant answer left after truncation: check "
                             "the response column, or raise train.max_length.")
        self.replayed = encode_all(self.tokenizer, self._replay(len(rows)), max_length)
        self.train_rows = TokenRows(rows + self.replayed)
        self.val_rows = self._validation_rows()

    def _replay(self, n_train: int) -> list[list[dict]]:
        """The base model's answers to everyday instructions, trained beside the user's rows (``replay.py``)."""
        t, prompts = self.ctx.config.train, replay.load_prompts()
        drawn = replay.replay_count(t.replay, n_train, len(prompts))
        if not drawn:
            return []
        words = f"Writing the base model's answers to {drawn} everyday instructions (general replay; kept for the next job)"
        self.ctx.reporter.phase("tokenizing", words)

        def progress(done: int, total: int) -> None:
            self.ctx.reporter.phase("tokenizing", words, current=done, total=total)

        conversations = replay.replay_conversations(self.model, self.tokenizer, t.replay, n_train, t.seed,
                                                    self.ctx.home.cache / "replay",
                                                    f"{self.ctx.model.path} ({t.precision or 'fp32'})",
                                                    prompts, progress)
        if not conversations:
            self.ctx.reporter.line(f"General replay: the base model gave no answer to the {drawn} everyday "
                                   "instructions drawn, so nothing is replayed.", level="warning")
            return []
        if _is_main(None):
            self.ctx.run.replay.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations),
                                           encoding="utf-8")
        self.ctx.reporter.line(
            f"General replay: {len(conversations)} answers of the base model to everyday instructions are trained "
            f"beside the {n_train} training rows (train.replay {t.replay:g}; they are in the run's "
            f"{self.ctx.run.replay.name}), so tuning keeps its general behaviour; the validation split is the user's "
            "rows only.")
        return conversations

    def _validation_rows(self) -> TokenRows | None:
        validation = getattr(self.ctx.data, "validation", None)
        if validation is None or not len(validation):
            return None
        rows = encode_all(self.tokenizer, validation["messages"][:EVAL_ROWS_FINAL], self.ctx.config.train.max_length)
        return TokenRows(rows) if rows else None

    # --- train -------------------------------------------------------------------------------------
    def train(self) -> TrainOutcome:
        """Train with the transformers Trainer; stops within one step when ``ctx.stop`` is set."""
        ctx = self.ctx
        counter = ItemCounter()
        limit = ctx.config.train.max_minutes
        callback = ReporterCallback(ctx.reporter, ctx.stop, counter, unit="tokens",
                                    max_seconds=limit * 60 if limit else None)
        evaluating = self.val_rows is not None
        eval_rows = TokenRows(self.val_rows.rows[:EVAL_ROWS_DURING_TRAINING]) if evaluating else None
        keep_best = KeepBest(self.model) if evaluating else None
        self.trainer = ChatTrainer(
            model=self.model, args=self._arguments(evaluating), train_dataset=self.train_rows,
            eval_dataset=eval_rows, data_collator=self._collator(), processing_class=self.tokenizer,
            callbacks=[callback] + ([keep_best] if keep_best else []), counter=counter,
        )
        self.trainer.remove_callback(PrinterCallback)  # the reporter logs; the printer would spam stdout
        self.fast = FastPath.for_run(ctx.config, ctx.home.root, self.model, self._precision())
        self.fast.attach(self.trainer, self.model, ctx.reporter.line)
        ctx.reporter.line(self.fast.describe())
        ctx.reporter.phase("training", f"Training on {len(self.train_rows)} conversations")
        resume = str(ctx.resume_from) if ctx.resume_from else None
        try:
            result = self.trainer.train(resume_from_checkpoint=resume)
        finally:
            self.fast.detach()
            _drop_optimiser(self.trainer)
        extra = {"tokens": counter.total, **({"replay_rows": len(self.replayed)} if self.replayed else {})}
        if keep_best is not None and keep_best.summary():
            restored = keep_best.restore()
            ctx.reporter.line(keep_best.summary() + (f" The weights of step {keep_best.best_step} are the ones kept."
                                                     if restored else ""))
            extra.update(best_step=keep_best.best_step, best_eval_loss=round(keep_best.best_loss, 4),
                         early_stopped_at=keep_best.stopped_at, restored_best=restored)
        return TrainOutcome(stopped=callback.stopped_early, global_step=self.trainer.state.global_step,
                            train_loss=result.training_loss, extra=extra)

    def _collator(self):
        """One packed row per batch where packing is exact and pays (a GPU), else rows padded to the longest."""
        if self.device is not None and self.device.packing:
            return PackedCollator()
        return PaddedCollator(self.tokenizer.pad_token_id)

    def _arguments(self, evaluating: bool) -> TrainingArguments:
        t, hardware = self.ctx.config.train, self._hardware()
        eval_every = t.eval_every or 50
        return TrainingArguments(
            output_dir=str(self.ctx.run.checkpoints),
            num_train_epochs=t.epochs or 1.0,
            max_steps=t.max_steps or -1,
            learning_rate=t.learning_rate or 2e-4,
            per_device_train_batch_size=t.batch_size or 4,
            per_device_eval_batch_size=t.batch_size or 4,
            gradient_accumulation_steps=t.grad_accum or 1,
            weight_decay=t.weight_decay,
            warmup_steps=t.warmup_ratio,  # a float below 1 is a fraction of the steps in transformers 5
            lr_scheduler_type="cosine",
            train_sampling_strategy="group_by_length",
            logging_steps=1,
            eval_strategy="steps" if evaluating else "no",
            eval_steps=eval_every,
            save_strategy="steps",
            save_steps=t.save_every or max(eval_every, 50),
            save_total_limit=2,
            seed=t.seed,
            use_cpu=hardware.device == "cpu",
            bf16=self._precision() == "bf16",  # autocast: bf16 matmuls; the LoRA adapters stay fp32
            report_to=trainer_report_to(self.ctx.config),  # TensorBoard comes from the tracking sink
            run_name=self.ctx.run.name,
            disable_tqdm=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            remove_unused_columns=False,
            label_names=["shift_labels"],
            prediction_loss_only=True,
            ddp_find_unused_parameters=False,
            optim=self.device.optimizer if self.device is not None else "adamw_torch",
        )

    # --- save / load -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the adapter (or the full model, safetensors) and the tokenizer to ``run/model``."""
        if not _is_main(self.trainer):
            return
        self.ctx.reporter.phase("saving", f"Saving the model to {self.ctx.run.model}")
        out = self.ctx.run.model
        out.mkdir(parents=True, exist_ok=True)
        model = self.trainer.accelerator.unwrap_model(self.model) if self.trainer else self.model
        model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)

    def load_trained(self) -> None:
        """Load the base model and this run's saved weights from ``run/model`` (instead of setup + train)."""
        self._set_threads()
        out = self.ctx.run.model
        if not out.is_dir():
            raise FileNotFoundError(f"{out} holds no trained model: train the run first (or resume it).")
        self.tokenizer = self._load_tokenizer()
        self.ctx.reporter.phase("loading", f"Loading the trained model from {out}")
        # Scored at the precision the playground uses: fp32 on a CPU (bf16 only ever sped up the training there).
        dtype = self._dtype() if self._hardware().device == "cuda" else torch.float32
        if (out / "adapter_config.json").is_file():
            self.model = self._load_adapter(out, dtype)
        else:
            from transformers import AutoModelForCausalLM
            self.model = AutoModelForCausalLM.from_pretrained(out, dtype=dtype)
        self.model.eval()
        self.val_rows = self._validation_rows()

    # --- evaluate ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Base versus tuned answer loss and perplexity on the validation split, and a few answers side by side.

        For LoRA/QLoRA the base is the same model with the adapter disabled; for a full fine-tune the base is
        loaded separately and freed afterwards.
        """
        self.ctx.reporter.phase("evaluating", "Comparing the base and the tuned model on the validation split")
        with eager():
            return self._compare()

    def _compare(self) -> dict[str, Any]:
        rows = self.val_rows
        if rows is None:
            return {"task": "chat", "split": "validation", "rows": 0,
                    "message": "There is no validation split, so nothing was compared."}
        batches = _batches(rows.rows, self.ctx.config.train.batch_size or 4, self.tokenizer.pad_token_id)
        examples = _example_prompts(self.ctx.data.validation)
        self._score_in_fp32_on_cpu()
        model = self._unwrapped()
        tuned = answer_loss(model, batches)
        tuned_answers = [self._answer(model, m) for m, _ in examples]
        tuned_probe = probe.score(model, self.tokenizer)  # did it forget? (general questions, base vs tuned)
        with _base_of(self, model) as base:
            base_score = answer_loss(base, batches)
            base_answers = [self._answer(base, m) for m, _ in examples]
            base_probe = probe.score(base, self.tokenizer)
        return {
            "task": "chat", "split": "validation", "rows": len(rows), "answer_tokens": tuned["tokens"],
            "base": {"eval_loss": base_score["loss"], "perplexity": base_score["perplexity"]},
            "tuned": {"eval_loss": tuned["loss"], "perplexity": tuned["perplexity"]},
            "change": {"eval_loss": _relative(tuned["loss"], base_score["loss"]),
                       "perplexity": _relative(tuned["perplexity"], base_score["perplexity"])},
            "examples": [
                {"prompt": _prompt_text(m), "reference": ref, "base": b, "tuned": t}
                for (m, ref), b, t in zip(examples, base_answers, tuned_answers)
            ],
            "probe": probe.compare(base_probe, tuned_probe),
        }

    def _score_in_fp32_on_cpu(self) -> None:
        """Reload a LoRA run trained on a bf16 base with the base in fp32: the comparison then scores exactly
        the model the playground and the export use (bf16 speeds up training on a CPU; fp32 is what users get)."""
        model = self._unwrapped()
        if _device(model).type != "cpu" or all(p.dtype != torch.bfloat16 for p in model.parameters()):
            return
        if not (self.ctx.run.model / "adapter_config.json").is_file():
            model.to(torch.float32)  # not saved (the runner always saves first): the same weights, upcast
            return
        del model
        self.trainer = self.model = None
        release_memory()
        self.model = self._load_adapter(self.ctx.run.model, torch.float32)

    def _load_adapter(self, folder, dtype: torch.dtype):
        from peft import PeftModel

        return PeftModel.from_pretrained(self._load_base(dtype=dtype), folder).eval()

    def _unwrapped(self):
        return self.trainer.accelerator.unwrap_model(self.model) if self.trainer else self.model

    @torch.no_grad()
    def _answer(self, model, messages: list[dict]) -> str:
        """A greedy answer of at most GENERATION_TOKENS tokens."""
        text = render(self.tokenizer, messages, add_generation_prompt=True)
        enc = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").to(_device(model))
        model.eval()
        out = model.generate(**enc, max_new_tokens=GENERATION_TOKENS, do_sample=False, use_cache=True,
                             pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    # --- cleanup -----------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Drop the model, trainer and data so repeated jobs in one process do not grow memory; after an eager
        run whose kernels were not cached, build them in the background for the next run (``speed.FastPath``)."""
        if self.fast is not None and self.fast.wants_warmup and self.ctx.run.config.is_file():
            start_background_warmup(self.ctx.run.config, self.ctx.home.root)
        self.fast = None
        self.trainer = None
        self.model = None
        self.train_rows = self.val_rows = None
        release_memory()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _base_of:
    """The base model for comparison: the adapter switched off, or a separate load for a full fine-tune."""

    def __init__(self, recipe: ChatRecipe, model):
        self.recipe, self.model, self._ctx, self._loaded = recipe, model, None, None

    def __enter__(self):
        if hasattr(self.model, "disable_adapter"):
            self._ctx = self.model.disable_adapter()
            self._ctx.__enter__()
            return self.model
        self._loaded = self.recipe._load_base(quantized=False)
        return self._loaded

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        self._loaded = None
        release_memory()
        return False


def _batches(rows: list[dict], batch_size: int, pad_id: int) -> list[dict[str, torch.Tensor]]:
    collate = PaddedCollator(pad_id)
    ordered = sorted(rows, key=lambda r: len(r["input_ids"]))
    return [collate(ordered[i:i + batch_size]) for i in range(0, len(ordered), batch_size)]


def _example_prompts(validation, n: int = GENERATION_EXAMPLES) -> list[tuple[list[dict], str]]:
    """Up to ``n`` validation conversations cut before their last answer, with that answer as reference."""
    out = []
    for messages in validation["messages"]:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last:
            out.append((list(messages[:last]), messages[last]["content"]))
        if len(out) == n:
            break
    return out


def _prompt_text(messages: list[dict]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else ""


def _relative(new: float, old: float) -> float | None:
    if not (math.isfinite(new) and math.isfinite(old)) or old == 0:
        return None
    return (new - old) / old


def _drop_optimiser(trainer) -> None:
    """Free the optimiser's state once training ended (the checkpoints keep it for a resume): a full fine-tune's
    AdamW moments are twice the model, and the comparison with the base comes next."""
    if trainer is None:
        return
    trainer.optimizer = trainer.lr_scheduler = None
    trainer.accelerator._optimizers.clear()
    trainer.accelerator._schedulers.clear()
    release_memory()


def _sharded() -> bool:
    """Whether accelerate launched this process with FSDP (QLoRA then stores its 4-bit weights as bf16)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _is_main(trainer) -> bool:
    if trainer is not None:
        return trainer.is_world_process_zero()
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) \
        or torch.distributed.get_rank() == 0


__all__ = ["ChatRecipe"]


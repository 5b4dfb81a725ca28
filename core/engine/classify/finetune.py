"""LoRA and full fine-tuning of classifiers with the transformers ``Trainer`` (works under ``accelerate launch``).

EfficientNet (a plain ``nn.Module``) trains through the same Trainer with its own loss. Its BatchNorm layers
stay in eval mode (running statistics frozen): measured on the digits example (400 train / 100 validation,
64 px, batch 16, 6 epochs), frozen statistics give 0.98-1.00 accuracy at lr 3e-4 or 1e-3, BatchNorm in
training mode 0.49-0.56. A 10x higher learning rate for the new head did not help (0.97-0.98), so one
learning rate trains everything.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from transformers import PrinterCallback, Trainer

from ...distributed import is_main_process
from ...models import classifiers as cm
from ...models.backbones import native_image_side
from ...presets import choose_precision, estimated_steps
from ...strategies import apply_strategy, get_strategy, trainable_parameters
from ..callbacks import ItemCounter, ReporterCallback
from ..checkpoints import AtomicCheckpoints
from ..context import TrainContext, TrainOutcome
from ..tracking import trainer_report_to
from .base import BaseRecipe
from .metrics import headline


class Collator:
    """Trainer collator over rows {item column, label}: builds inputs per batch and counts samples."""

    def __init__(self, inputs: cm.ModelInputs, column: str, counter=None) -> None:
        self.inputs = inputs
        self.column = column
        self.counter = counter

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.inputs([row[self.column] for row in rows])
        batch["labels"] = torch.tensor([int(row["label"]) for row in rows], dtype=torch.long)
        if self.counter is not None:
            self.counter.add(len(rows))
        return batch


class FineTuneRecipe(BaseRecipe):
    """LoRA or full fine-tuning of a text or image classifier."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.model: nn.Module | None = None
        self.inputs: cm.ModelInputs | None = None
        self.tokenizer = None
        self.trainer = None
        strategy = get_strategy(ctx.config.strategy)
        if strategy.prepare is None:
            raise ValueError(f"strategy '{ctx.config.strategy}' is not a fine-tuning strategy: use lora or full.")
        if strategy.transformer_only and ctx.model.kind == "efficientnet":
            raise ValueError(f"{strategy.title} needs a transformer model and {ctx.config.model} is a convolutional "
                             "network: choose head-only (fastest) or full for it, or a transformer image model.")

    # --- setup ----------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Base features for the baselines (main process), then the model with its strategy applied."""
        self.set_threads()
        if is_main_process():
            self.base_features()  # before the tuned model is built, so both are never in memory at once
            self.encoder = None
            if self.ctx.stop.is_set():
                return
        from transformers import set_seed

        set_seed(self.ctx.config.train.seed)
        self.ctx.reporter.phase("loading", f"Loading {self.ctx.config.model} with {self.new_head}.")
        model = self.objective.build_model(self.ctx.model, self.task)
        self.inputs = self.make_inputs(model)
        self.model = self.apply_strategy(model)

    @property
    def new_head(self) -> str:
        return f"a new {self.n_classes}-class head"

    def make_inputs(self, model: nn.Module) -> cm.ModelInputs:
        if not self.image:
            from ...models import load_tokenizer
            self.tokenizer = load_tokenizer(self.ctx.model)
            return cm.ModelInputs(self.task, tokenizer=self.tokenizer,
                                  max_length=self.ctx.config.train.max_length or 256)
        native = getattr(model, "image_size", None) or native_image_side(self.ctx.model)
        self.image_size = self.image_size or self.choose_size(native)
        inputs = cm.image_inputs(self.ctx.model, model, self.image_size)
        self.image_size = inputs.image_size
        return inputs

    def apply_strategy(self, model: nn.Module) -> nn.Module:
        extra = {}
        if get_strategy(self.ctx.config.strategy).adapter:
            extra["modules_to_save"] = cm.head_module_names(model)
        model = apply_strategy(self.ctx.config.strategy, model, self.task, self.ctx.config.train, **extra)
        trainable, total = trainable_parameters(model)
        self.ctx.reporter.line(f"Training {trainable:,} of {total:,} parameters ({trainable / total:.2%}).")
        return model

    # --- training -------------------------------------------------------------------------------------
    def train(self) -> TrainOutcome:
        """Run the Trainer (resuming from ``ctx.resume_from`` when set); events go through ReporterCallback."""
        t = self.ctx.config.train
        counter = ItemCounter()
        callback = ReporterCallback(self.ctx.reporter, self.ctx.stop, counter, unit="samples",
                                    max_seconds=t.max_minutes * 60 if t.max_minutes else None)
        self.trainer = self.make_trainer(counter, callback)
        resume = str(self.ctx.resume_from) if self.ctx.resume_from else None
        result = self.trainer.train(resume_from_checkpoint=resume)
        return TrainOutcome(stopped=callback.stopped_early, global_step=result.global_step,
                            train_loss=result.training_loss)

    def training_arguments(self):
        from transformers import TrainingArguments

        t, hardware = self.ctx.config.train, self.ctx.hardware
        n_train = len(self.ctx.data.train)
        total = estimated_steps(t, n_train)
        eval_every = t.eval_every or max(1, total // 8)
        on_gpu = hardware is not None and hardware.device == "cuda"
        return TrainingArguments(
            output_dir=str(self.ctx.run.checkpoints), num_train_epochs=float(t.epochs or 3),
            max_steps=t.max_steps or -1, per_device_train_batch_size=t.batch_size or 16,
            per_device_eval_batch_size=max(t.batch_size or 16, 32), gradient_accumulation_steps=t.grad_accum or 1,
            learning_rate=t.learning_rate or 1e-4, weight_decay=t.weight_decay, warmup_steps=t.warmup_ratio,
            lr_scheduler_type="linear", logging_steps=max(1, min(eval_every, math.ceil(total / 50))),
            eval_strategy="steps", eval_steps=eval_every, save_strategy="steps",
            save_steps=t.save_every or max(eval_every, total // 4), save_total_limit=2,
            report_to=trainer_report_to(self.ctx.config), run_name=self.ctx.run.name,
            disable_tqdm=True, seed=t.seed, data_seed=t.seed, use_cpu=not on_gpu,
            bf16=choose_precision(self.ctx.config, hardware) == "bf16", remove_unused_columns=False,
            label_names=["labels"],
            dataloader_num_workers=0,  # gradient checkpointing, when asked for, is set on the model by the strategy
        )

    def make_trainer(self, counter: ItemCounter, callback: ReporterCallback):
        trainer = self.trainer_class(
            model=self.model, args=self.training_arguments(), train_dataset=self.ctx.data.train,
            eval_dataset=self.ctx.data.validation, data_collator=self.collator(counter),
            compute_metrics=self.compute_metrics, callbacks=[callback],
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to our reporter, not to stdout
        trainer.plain_module = self.ctx.model.kind == "efficientnet"
        return trainer

    def collator(self, counter: ItemCounter):
        """Turns dataset rows into the model's inputs and labels (class ids)."""
        return Collator(self.inputs, self.column, counter)

    @property
    def trainer_class(self):
        return ClassifierTrainer

    @property
    def compute_metrics(self):
        return compute_metrics

    # --- saving, loading, predicting ----------------------------------------------------------------------
    def save(self) -> None:
        """The adapter or full model, the tokenizer, labels.json, classifier.json and the base centroids."""
        if self.model is None:
            self.ctx.reporter.line("No model was trained, so nothing was saved.", level="warning")
            return
        folder = self.ctx.run.model
        cm.save_model(self.model, folder, self.ctx.model, self.tokenizer)
        self.write_info(folder, {**self.input_info(), **self.inputs.settings()})
        self.save_centroids()
        self.encoder = None  # the centroids needed it; the evaluation reads the cached features

    def load_trained(self) -> None:
        """Load the tuned model from the run's model folder (for ``studio eval``)."""
        self.set_threads()
        info = self.read_info()
        self.model = self.objective.load_model(self.ctx.run.model, self.ctx.model, self.task)
        if not self.image:
            from ...models import load_tokenizer
            self.tokenizer = load_tokenizer(self.ctx.model)
            self.inputs = cm.ModelInputs(self.task, tokenizer=self.tokenizer, max_length=info["max_length"])
        else:
            self.image_size = int(info["image_size"])
            self.inputs = cm.ModelInputs(self.task, image_size=self.image_size, mean=info["mean"], std=info["std"],
                                         interpolate=bool(info.get("interpolate")))

    def tuned_outputs(self) -> np.ndarray:
        """The tuned model's predictions on the validation split: (N, C) probabilities, or (N,) numbers."""
        items, _ = self.split("validation")
        return self.objective.predict_items(self.model, self.inputs, items)

    def tuned_probs(self) -> np.ndarray:
        return self.tuned_outputs()

    def cleanup(self) -> None:
        self.model = None
        self.trainer = None
        self.tokenizer = None
        super().cleanup()


def _native_size(resolved) -> int:
    if resolved.kind == "efficientnet":
        return 224
    from pathlib import Path

    from transformers import AutoConfig

    from ...models.backbones import image_settings
    return image_settings(Path(resolved.path), AutoConfig.from_pretrained(resolved.path))[0]


def compute_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-F1 for the Trainer's evaluation."""
    logits = eval_pred.predictions
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    labels = eval_pred.label_ids
    return headline(labels, np.asarray(logits).argmax(axis=-1), int(np.asarray(logits).shape[-1]))


class ClassifierTrainer(AtomicCheckpoints, Trainer):
    """The Trainer with a loss for plain modules (EfficientNet returns logits, not a transformers output), and
    checkpoints written whole or not at all."""

    plain_module = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.plain_module:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        logits = model(inputs["pixel_values"])
        loss = nn.functional.cross_entropy(logits, inputs["labels"])
        return (loss, {"logits": logits}) if return_outputs else loss

"""Fine-tuning for the automatic search: a compact loop with what small data needs, measured on held-out rows.

- early stopping: the model is scored on held-out rows after every epoch and the best epoch's weights are kept
  (those that train: the adapters and head for LoRA, everything for a full fine-tune);
- augmentation for images: small rotations, shifts and zooms (never flips: a mirrored digit or letter is not the
  same class);
- label smoothing (0.1), which keeps a small model from becoming over-confident on a few hundred rows (the
  objective's loss: ``objective.Classification``; a regressor trains a Huber loss on standardised targets);
- a deadline: the loop stops between steps when the search's budget runs out, keeping the best epoch so far.

The search runs it twice at most: on part of the training rows to score a strategy, then on all of them for the
winner with the epoch count the first run found best.
"""
from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...models import classifiers as cm
from ...strategies import apply_strategy, get_strategy
from .objective import Classification


@dataclass(frozen=True)
class TuneSettings:
    """One fine-tune.

    Args:
        strategy: lora | full.
        learning_rate: AdamW peak (linear decay after a 6 % warm-up).
        epochs: the most epochs.
        batch_size: examples per step.
        patience: stop after this many epochs without a better held-out score.
        augment: augment training images.
        seed: initialisation, shuffling and augmentation.
    """

    strategy: str
    learning_rate: float
    epochs: int
    batch_size: int = 16
    patience: int = 2
    augment: bool = False
    seed: int = 0


@dataclass
class TuneResult:
    """A fine-tune's outcome; scores are the objective's (accuracy, or mean absolute error for a regressor)."""

    model: nn.Module | None
    best_epoch: int = 0
    best_score: float | None = None
    epochs_run: int = 0
    stopped: bool = False
    seconds_per_epoch: float = 0.0
    history: list[float] = field(default_factory=list)


def augment_image(image, rng: random.Random):
    """A slightly rotated (up to 10 degrees), shifted (up to 8 %) and zoomed (0.9-1.1) copy; the uncovered
    border takes the image's median colour."""
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    fill = tuple(int(v) for v in np.median(np.asarray(image).reshape(-1, 3), axis=0))
    moved = image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR, fillcolor=fill,
                         translate=(rng.uniform(-0.08, 0.08) * width, rng.uniform(-0.08, 0.08) * height))
    zoom = rng.uniform(0.9, 1.1)
    side_w, side_h = max(1, round(width / zoom)), max(1, round(height / zoom))
    left, top = (width - side_w) // 2, (height - side_h) // 2
    if zoom >= 1:
        return moved.crop((left, top, left + side_w, top + side_h)).resize((width, height))
    canvas = Image.new("RGB", (side_w, side_h), fill)
    canvas.paste(moved, (-left, -top))
    return canvas.resize((width, height))


def build(resolved, task: str, labels: list[str], strategy: str, train_config, image_size: int | None,
          objective=None):
    """A fresh model with the strategy applied and its inputs (tokenizer or image preprocessing).

    Args:
        resolved, task, labels: the base model, the task and its classes.
        strategy: lora | full (or another strategy that wraps a model).
        train_config: the job's ``TrainConfig`` (LoRA rank and alpha).
        image_size: the input side for images.
        objective: what the new head predicts (``Classification(labels)`` when None).
    """
    objective = objective or Classification(labels)
    model = objective.build_model(resolved, task)
    if cm.reads_text(task):
        from ...models import load_tokenizer
        inputs = cm.ModelInputs(task, tokenizer=load_tokenizer(resolved), max_length=train_config.max_length or 256)
    else:
        inputs = cm.image_inputs(resolved, model, image_size or 224)
    extra = {"modules_to_save": cm.head_module_names(model)} if get_strategy(strategy).adapter else {}
    rank = train_config.lora_r or 8
    settings = dataclasses.replace(train_config, lora_r=rank, lora_alpha=train_config.lora_alpha or 2 * rank)
    return apply_strategy(strategy, model, task, settings, **extra), inputs


def fine_tune(model: nn.Module, inputs: cm.ModelInputs, items: Sequence, labels: Sequence,
              held_items: Sequence, held_labels: Sequence, settings: TuneSettings, deadline: float,
              objective, stop: threading.Event | None = None,
              on_step: Callable[[dict], None] | None = None) -> TuneResult:
    """Train ``model`` and keep its best epoch on the held-out rows (or its last epoch when there are none).

    Args:
        model: from ``build``.
        inputs: turns items into model inputs.
        items, labels: training items (texts or image paths) and their targets (label ids, or numbers).
        held_items, held_labels: rows scored after each epoch (empty: train ``settings.epochs`` epochs).
        settings: strategy, learning rate, epochs, batch, patience, augmentation, seed.
        deadline: a ``time.perf_counter()`` value; training stops between steps after it.
        objective: the loss and the held-out score (``objective.Classification`` or a ``Regression``).
        stop: the job's stop event.
        on_step: called after each step with step, total_steps, epoch, loss, learning_rate.
    """
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.01)
    per_epoch = math.ceil(len(items) / settings.batch_size)
    total = per_epoch * settings.epochs
    warmup = max(1, int(0.06 * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    result, best_state, step, since_best = TuneResult(model=model), None, 0, 0
    y_all = objective.targets(labels)
    for epoch in range(settings.epochs):
        started = time.perf_counter()
        model.train()
        order = list(range(len(items)))
        rng.shuffle(order)
        for start in range(0, len(order), settings.batch_size):
            if time.perf_counter() > deadline or (stop is not None and stop.is_set()):
                result.stopped = True
                break
            index = order[start:start + settings.batch_size]
            loss = _step(model, inputs, [items[i] for i in index], y_all[index], settings, rng, objective)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if on_step is not None:
                on_step({"step": step, "total_steps": total, "epoch": epoch + (start + len(index)) / len(items),
                         "loss": float(loss.detach()), "learning_rate": schedule.get_last_lr()[0]})
        if result.stopped:
            break
        result.epochs_run = epoch + 1
        result.seconds_per_epoch = time.perf_counter() - started
        if not held_items:
            continue
        score = objective.tune_score(model, inputs, held_items, held_labels)
        result.history.append(score)
        if objective.better(score, result.best_score):
            result.best_score, result.best_epoch, since_best = score, epoch + 1, 0
            best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        else:
            since_best += 1
            if since_best >= settings.patience:
                break
    if best_state is not None:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in best_state:
                    param.copy_(best_state[name])
    if not held_items:
        result.best_epoch = result.epochs_run
    model.eval()
    return result


def _step(model, inputs: cm.ModelInputs, batch_items: list, y: torch.Tensor, settings: TuneSettings,
          rng: random.Random, objective) -> torch.Tensor:
    if settings.augment:
        from ...models.encoders import open_image
        batch_items = [augment_image(open_image(item), rng) for item in batch_items]
    return objective.tune_loss(cm.logits_of(model, inputs(batch_items)), y)

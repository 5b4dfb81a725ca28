"""The chat loss: cross-entropy on answer tokens, with the LM head applied only where there is a target.

The vocabulary projection of a small model is a large share of its compute (SmolLM2-135M: 49k x 576, a fifth
of the weights), and most positions of a chat example (system, question, template) have no target. transformers
5 models take a boolean ``logits_to_keep`` mask and project only those hidden states, through the ordinary
forward, so this works through peft and DDP wrappers alike.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import Trainer

from ..callbacks import ItemCounter
from ..checkpoints import AtomicCheckpoints
from .collate import IGNORE, useful_tokens
from .compile import eager


def answer_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of token cross-entropies, number of target tokens) of a batch that carries ``shift_labels``.

    Args:
        model: a causal LM (optionally peft-wrapped) whose forward accepts ``logits_to_keep``.
        batch: ``input_ids``, ``shift_labels`` and either ``attention_mask`` or ``position_ids``.
    """
    inputs = dict(batch)
    targets = inputs.pop("shift_labels")
    keep = targets != IGNORE
    count = int(keep.sum())
    if count == 0:
        # Still run the model so every parameter takes part (DDP waits for all gradients).
        logits = model(**inputs, logits_to_keep=1, use_cache=False).logits
        return logits.sum() * 0.0, 0
    logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
    if logits.dim() == 3:  # a model that ignores a mask-shaped logits_to_keep returns every position
        logits = logits[keep] if logits.shape[:2] == keep.shape else logits.reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
    return loss, count


def full_logits_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy on the same targets computed from every position's logits (the plain way)."""
    inputs = dict(batch)
    targets = inputs.pop("shift_labels")
    logits = model(**inputs, use_cache=False).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


class ShortFirstGroupedSampler(torch.utils.data.Sampler):
    """Batches of similar length in a random order, the first optimiser step made of the shortest rows.

    Like transformers' ``LengthGroupedSampler`` (shuffle, cut into mega-batches, sort each by length, so a batch
    holds rows of about one length), except that it does not put the longest batch first: that is there to
    run out of memory early, which the studio's memory check does before training. Short rows first bring the
    first point of the loss curve on screen sooner.

    The order is drawn from ``seed`` and the epoch (``set_epoch``, which the Trainer calls), not from the global
    RNG: a run resumed in its second epoch draws that epoch's order again before the RNG state is restored, so
    a global-RNG order would differ from the uninterrupted run's (tests/test_resume_exact.py).

    Args:
        lengths: the token count of each row.
        group: rows per optimiser step (batch size x gradient accumulation).
        seed: the job's data seed.
    """

    def __init__(self, lengths: list[int], group: int, seed: int = 0):
        self.lengths, self.group, self.seed, self.epoch = list(lengths), max(1, group), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        n = len(self.lengths)
        mega = self.group * max(1, min(n // (self.group * 4), 50))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        chunks = [sorted(order[i:i + mega], key=self.lengths.__getitem__) for i in range(0, n, mega)]
        first = min(range(len(chunks)), key=lambda c: sum(self.lengths[i] for i in chunks[c][:self.group]))
        chunks.insert(0, chunks.pop(first))
        return iter([i for chunk in chunks for i in chunk])


class ChatTrainer(AtomicCheckpoints, Trainer):
    """A Trainer whose loss is the answer-token cross-entropy of ``answer_loss_sum``.

    The loss is normalised by the answer tokens of the whole accumulated (and, under DDP, gathered) batch,
    which the Trainer counts from ``shift_labels``; so gradient accumulation and several processes give the
    same gradient as one big batch.

    Args:
        counter: counts useful (non-padding) tokens of training batches for the throughput figure.
        (other arguments as ``transformers.Trainer``)
    """

    loss_is_scaled_for_ga = True

    def __init__(self, *args, counter: ItemCounter | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter
        # Makes the Trainer count answer tokens per accumulated batch and pass them as num_items_in_batch.
        self.model_accepts_loss_kwargs = True

    def evaluate(self, *args, **kwargs):
        with eager():  # layers compiled for training would compile again for a no-grad pass
            return super().evaluate(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        lengths = getattr(dataset, "lengths", None)
        if self.args.train_sampling_strategy != "group_by_length" or lengths is None:
            return super()._get_train_sampler(train_dataset)
        return ShortFirstGroupedSampler(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.counter is not None and model.training:
            self.counter.add(useful_tokens(inputs))
        loss_sum, count = answer_loss_sum(model, inputs)
        if not model.training:
            loss = loss_sum / max(count, 1)
        elif num_items_in_batch is not None:
            loss = loss_sum / num_items_in_batch
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * self.args.world_size  # DDP averages gradients over processes
        else:
            loss = loss_sum / max(count, 1) / self.current_gradient_accumulation_steps
        return (loss, {}) if return_outputs else loss


@torch.no_grad()
def answer_loss(model, batches) -> dict[str, float]:
    """Token-weighted mean answer loss and perplexity over ``batches`` (eval mode, no gradients).

    Args:
        model: the causal LM to score.
        batches: an iterable of collated batches (``shift_labels`` present).
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in batches:
            loss_sum, n = answer_loss_sum(model, batch)
            total += float(loss_sum)
            count += n
    finally:
        model.train(was_training)
    mean = total / count if count else float("nan")
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)) if count else float("nan"), "tokens": count}

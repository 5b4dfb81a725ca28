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


CE_CHUNK_ELEMENTS = 2**26  # logits per slice of the vocabulary projection (256 MB in fp32): 1024 rows of 49k


def answer_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of token cross-entropies, number of target tokens) of a batch that carries ``shift_labels``.

    Only the answer positions reach the vocabulary projection, and there in slices (``chunked_linear_ce``): the
    model returns those positions' hidden states (its LM head is bypassed for the call) and the projection and
    cross-entropy run together, their gradient taken at once, so no full logits tensor is kept for the backward
    pass. A model whose head does more than a linear map (logit soft-capping) gets its logits the ordinary way.

    Args:
        model: a causal LM (optionally peft/DDP-wrapped) whose forward accepts ``logits_to_keep``.
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
    head = _plain_head(model)
    if head is not None:
        with _hidden_states_from(head):
            hidden = model(**inputs, logits_to_keep=keep, use_cache=False).logits
        if hidden.dim() == 2 and hidden.shape[0] == count:
            return chunked_linear_ce(hidden, head.weight, targets[keep], head.bias), count
        hidden = None  # a model that ignored the mask: fall back to its logits below
    logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
    if logits.dim() == 3:  # a model that ignores a mask-shaped logits_to_keep returns every position
        logits = logits[keep] if logits.shape[:2] == keep.shape else logits.reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
    return loss, count


def _plain_head(model) -> torch.nn.Linear | None:
    """The model's LM head when it is a plain ``nn.Linear`` applied last (no soft-capping, not sharded)."""
    inner = getattr(model, "module", model)  # DDP
    if type(inner).__name__.startswith("FullyShardedDataParallel") or not hasattr(inner, "get_output_embeddings"):
        return None
    head = inner.get_output_embeddings()
    config = getattr(inner, "config", None)
    if type(head) is not torch.nn.Linear or getattr(config, "final_logit_softcapping", None):
        return None
    return head


class _hidden_states_from:
    """Within the block the LM head returns its input, so the model's "logits" are the kept hidden states."""

    def __init__(self, head: torch.nn.Linear):
        self.head = head

    def __enter__(self):
        self.saved = self.head.__dict__.get("forward")  # an accelerate hook's wrapper, if any
        self.head.forward = _identity
        return self.head

    def __exit__(self, *exc):
        if self.saved is None:
            del self.head.forward  # back to the class's forward
        else:
            self.head.forward = self.saved
        return False


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(h_i W^T + b, y_i), computed in row slices; with gradients, they are taken in the same pass (the
    softmax of a slice is at hand) and kept, so no logits outlive their slice."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, rows, training):
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        h, w = hidden.to(dtype), weight.to(dtype)
        b = bias.to(dtype) if bias is not None else None
        want_h, want_w = training and ctx.needs_input_grad[0], training and ctx.needs_input_grad[1]
        want_b = training and bias is not None and ctx.needs_input_grad[2]
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_w else None
        grad_b = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if want_b else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, h.shape[0], rows):
            h_c, y_c = h[start:start + rows], targets[start:start + rows]
            logits = F.linear(h_c, w, b).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, y_c[:, None]).squeeze(1)).sum()
            if not (want_h or want_w or want_b):
                continue
            p = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
            p[torch.arange(p.shape[0], device=p.device), y_c] -= 1.0
            if want_h:
                grad_h[start:start + rows] = p.to(dtype) @ w
            if want_w:
                grad_w.addmm_(p.t(), h_c.float())
            if want_b:
                grad_b += p.sum(0)
        ctx.save_for_backward(*(g for g in (grad_h, grad_w, grad_b) if g is not None))
        ctx.have = (want_h, want_w, want_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        saved = list(ctx.saved_tensors)
        out = []
        for have, dtype in zip(ctx.have, ctx.dtypes):
            out.append((saved.pop(0) * grad_out).to(dtype) if have else None)
        return out[0], out[1], out[2], None, None, None


def chunk_rows(vocab: int) -> int:
    """Rows per slice so that a slice holds about ``CE_CHUNK_ELEMENTS`` logits (between 64 and 1024 rows)."""
    return max(64, min(1024, CE_CHUNK_ELEMENTS // max(1, vocab)))


def chunked_linear_ce(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                      bias: torch.Tensor | None = None, rows: int | None = None) -> torch.Tensor:
    """Summed cross-entropy of ``hidden @ weight.T (+ bias)`` against ``targets``, ``rows`` rows at a time.

    Args:
        hidden: (n, d) hidden states of the positions that have a target.
        weight: (vocab, d) the LM head's weight; bias: its bias or None.
        targets: (n,) token ids.
        rows: rows per slice (memory: rows x vocab fp32 logits at a time); None: ``chunk_rows(vocab)``.
    """
    rows = rows or chunk_rows(weight.shape[0])
    training = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (hidden, weight, bias))
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, rows, training)


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

"""Held-out preference pairs scored the same way for the base and the tuned model.

A model prefers the chosen answer when it gives it a higher summed log-probability than the rejected one, both
after the same prompt rendered with the chat template (the answer's tokens through the end-of-turn token, as the
chat recipe learns them). From those sums come ``preference_accuracy`` (the share of pairs preferred the right
way round) and ``reward_margin`` (the mean log-probability gap, chosen minus rejected, in nats: the reward that
reference-free objectives such as ORPO raise). DPO's own reward is relative to the base:
``beta * ((tuned_c - base_c) - (tuned_r - base_r))``; its mean and how often it is positive are reported too.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...models.templates import render
from ..chat.collate import IGNORE, PaddedCollator

SCORE_BATCH = 8


def encode_answer(tokenizer, prompt: list[dict], answer: str, max_length: int | None) -> dict[str, list[int]]:
    """Token ids of the prompt followed by ``answer``, labels on the answer only (through its end-of-turn token).

    Args:
        tokenizer: a tokenizer with a chat template.
        prompt: the turns before the answer (ending with the user's).
        answer: the assistant's answer.
        max_length: cut to this many tokens (None keeps everything).
    """
    before = render(tokenizer, prompt, add_generation_prompt=True)
    text = render(tokenizer, list(prompt) + [{"role": "assistant", "content": answer}])
    if not text.startswith(before):
        raise ValueError("The chat template renders a prompt differently when an answer follows it, so the answer "
                         "cannot be located. Use a model whose template renders turns in order.")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [IGNORE] * len(ids)
    span = [i for i, (a, b) in enumerate(offsets) if b > a and a >= len(before)]
    ends = [k for k, i in enumerate(span) if ids[i] == tokenizer.eos_token_id]
    for i in span[: ends[0] + 1] if ends else span:
        labels[i] = ids[i]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def encode_pairs(tokenizer, pairs, max_length: int | None) -> tuple[list[dict], list[dict]]:
    """(chosen rows, rejected rows) of a dataset of pairs (``prompt``, ``chosen``, ``rejected``)."""
    chosen = [encode_answer(tokenizer, p, c, max_length) for p, c in zip(pairs["prompt"], pairs["chosen"])]
    rejected = [encode_answer(tokenizer, p, r, max_length) for p, r in zip(pairs["prompt"], pairs["rejected"])]
    return chosen, rejected


@torch.no_grad()
def answer_logps(model, rows: list[dict], pad_id: int, batch_size: int = SCORE_BATCH) -> list[float]:
    """The summed log-probability of each row's labelled tokens (eval mode, no gradients).

    Args:
        model: a causal LM (peft-wrapped or not) whose forward takes a boolean ``logits_to_keep``.
        rows: ``encode_answer`` rows.
        pad_id: the padding token id.
        batch_size: rows per forward pass (sorted by length, so batches carry little padding).
    """
    was_training = model.training
    model.eval()
    collate = PaddedCollator(pad_id)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    sums = [0.0] * len(rows)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            for i, value in zip(chunk, _batch_logps(model, collate([rows[i] for i in chunk]))):
                sums[i] = value
    finally:
        model.train(was_training)
    return sums


def _batch_logps(model, batch: dict[str, torch.Tensor]) -> list[float]:
    targets = batch.pop("shift_labels")
    keep = targets != IGNORE
    if not keep.any():
        return [0.0] * targets.shape[0]
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    keep_on = keep.to(device)
    logits = model(**batch, logits_to_keep=keep_on, use_cache=False).logits
    if logits.dim() == 3:  # a model that ignores a mask-shaped logits_to_keep returns every position
        logits = logits[keep_on] if logits.shape[:2] == keep.shape else logits.reshape(-1, logits.shape[-1])
    token_logps = -F.cross_entropy(logits.float(), targets[keep].to(device), reduction="none")
    rows = keep.nonzero()[:, 0].to(device)
    sums = torch.zeros(targets.shape[0], device=device).index_add_(0, rows, token_logps)
    return sums.cpu().tolist()


def side_scores(chosen: list[float], rejected: list[float]) -> dict[str, float]:
    """``preference_accuracy``, ``reward_margin`` and the mean log-probabilities of one model's pairs."""
    n = max(len(chosen), 1)
    gaps = [c - r for c, r in zip(chosen, rejected)]
    return {"preference_accuracy": sum(g > 0 for g in gaps) / n, "reward_margin": sum(gaps) / n,
            "logp_chosen": sum(chosen) / n, "logp_rejected": sum(rejected) / n}


def implicit_rewards(base: tuple[list, list], tuned: tuple[list, list], beta: float) -> dict[str, float]:
    """DPO's reward of the tuned model against the base: its mean margin and how often it favours the chosen."""
    margins = [beta * ((tc - bc) - (tr - br)) for bc, br, tc, tr in zip(*base, *tuned)]
    n = max(len(margins), 1)
    return {"implicit_reward_margin": sum(margins) / n, "implicit_reward_accuracy": sum(m > 0 for m in margins) / n}


def pair_details(pairs, base: tuple[list, list], tuned: tuple[list, list], shown: int = 8) -> dict[str, Any]:
    """The held-out pairs the tuned model still orders wrongly (worst first) and those it now orders rightly
    that the base did not (largest gain first), for the page."""
    items = []
    for i, (prompt, chosen, rejected) in enumerate(zip(pairs["prompt"], pairs["chosen"], pairs["rejected"])):
        b, t = base[0][i] - base[1][i], tuned[0][i] - tuned[1][i]
        items.append({"prompt": prompt[-1]["content"], "chosen": chosen, "rejected": rejected,
                      "base_margin": b, "tuned_margin": t})
    wrong = sorted((x for x in items if x["tuned_margin"] <= 0), key=lambda x: x["tuned_margin"])
    fixed = sorted((x for x in items if x["tuned_margin"] > 0 >= x["base_margin"]),
                   key=lambda x: x["base_margin"] - x["tuned_margin"])
    return {"still_wrong": wrong[:shown], "now_right": fixed[:shown], "still_wrong_count": len(wrong),
            "now_right_count": len(fixed)}

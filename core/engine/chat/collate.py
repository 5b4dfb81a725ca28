"""Chat examples as token ids with the loss on assistant tokens only, and the batches the trainer sees.

The chat template is applied as text; the assistant spans are found by rendering the conversation up to each
assistant turn and mapping the character offsets onto the tokens of the whole conversation. That works for any
template (SmolLM2's has no ``{% generation %}`` markers) and for tokenizers that merge across the boundary.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

from ...models.templates import render

IGNORE = -100


def encode_chat(tokenizer, messages: list[dict], max_length: int | None = None) -> dict[str, list[int]]:
    """Token ids and labels of one conversation; labels are -100 except on assistant answers.

    An answer's label span is its content plus the end-of-turn token the template closes it with (the
    tokenizer's eos token when the template uses it), so the model learns to stop; the turn headers, system and
    user text, and anything after the end-of-turn token are masked.

    Args:
        tokenizer: a fast transformers tokenizer with a chat template.
        messages: the conversation.
        max_length: cut the conversation to this many tokens (None keeps everything).
    """
    text = render(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [IGNORE] * len(ids)
    for start_char, end_char in _assistant_char_spans(tokenizer, messages, text):
        span = [i for i, (a, b) in enumerate(offsets) if b > a and a >= start_char and b <= end_char]
        for i in _through_end_of_turn(span, ids, tokenizer.eos_token_id):
            labels[i] = ids[i]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def _assistant_char_spans(tokenizer, messages: list[dict], text: str) -> list[tuple[int, int]]:
    """(start, end) character ranges of each assistant turn in ``text``, from rendered prefixes."""
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        through = render(tokenizer, messages[: i + 1])
        if not text.startswith(before) or not text.startswith(through):
            raise ValueError(
                "The chat template renders a conversation differently from its prefixes (it may add a date or "
                "drop earlier turns), so the assistant answers cannot be located. Use a model whose template "
                "renders turns in order."
            )
        spans.append((len(before), len(through)))
    return spans


def _through_end_of_turn(span: list[int], ids: list[int], eos_id: int | None) -> list[int]:
    """The span cut just after its last end-of-turn token, so a trailing newline is not learned."""
    if eos_id is None:
        return span
    last = max((k for k, i in enumerate(span) if ids[i] == eos_id), default=None)
    return span if last is None else span[: last + 1]


def encode_all(tokenizer, conversations: Iterable[list[dict]], max_length: int | None) -> list[dict[str, Any]]:
    """``encode_chat`` over a column of conversations, dropping those left with no answer token."""
    out = []
    for messages in conversations:
        row = encode_chat(tokenizer, list(messages), max_length)
        if any(label != IGNORE for label in row["labels"][1:]):
            out.append(row)
    return out


class TokenRows(torch.utils.data.Dataset):
    """Encoded conversations for the Trainer; ``lengths`` lets batches be grouped by length."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    @property
    def lengths(self) -> list[int]:
        return [len(r["input_ids"]) for r in self.rows]


def shifted(labels: list[int]) -> list[int]:
    """The target at each position (the next token's label), -100 at the end of the sequence."""
    return list(labels[1:]) + [IGNORE]


class PackedCollator:
    """Concatenates a batch into one row with per-conversation ``position_ids`` and no attention mask.

    transformers 5 sees the position ids restart and builds a block-diagonal causal mask, so no compute is
    spent on padding. ``shift_labels`` holds each position's target, shifted within its own conversation so
    the last token of one conversation never predicts the first of the next.
    """

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, pos, targets = [], [], []
        for row in rows:
            ids.extend(row["input_ids"])
            pos.extend(range(len(row["input_ids"])))
            targets.extend(shifted(row["labels"]))
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "position_ids": torch.tensor([pos], dtype=torch.long),
            "shift_labels": torch.tensor([targets], dtype=torch.long),
        }


class PaddedCollator:
    """Pads a batch to its longest row (right padding), with an attention mask; the reference layout.

    Args:
        pad_id: the padding token id.
        shift: emit ``shift_labels`` (our loss) instead of ``labels`` (the model's own loss).
    """

    def __init__(self, pad_id: int, shift: bool = True):
        self.pad_id = pad_id
        self.shift = shift

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(shifted(row["labels"]) if self.shift else row["labels"])
        key = "shift_labels" if self.shift else "labels"
        return {"input_ids": ids, "attention_mask": mask, key: labels}


def useful_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Non-padding tokens in a batch (what throughput counts)."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())

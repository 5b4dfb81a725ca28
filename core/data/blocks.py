"""Documents as training blocks: sections of about one block for splitting, exact token blocks for training.

Continued training packs exactly: each stretch of text is tokenized, an end-of-sequence token closes it, the
stretches are concatenated and cut into blocks of ``max_length`` tokens, so no position is padding. Before that,
documents are cut into sections of about one block (at paragraph, then line, then sentence boundaries), so that
a data set of a few documents can still hold some text out, and the row count the presets see is close to the
block count. Sections keep their exact text: consecutive sections of one document join back into it.

Both the data summary (how many blocks and tokens) and the training recipe call ``pack`` on the same rows, so
the numbers the page shows are the blocks that train.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_BLOCK_TOKENS = 256  # the presets' block length on a CPU (core/presets.py RECIPES, text-completion)
CHARS_PER_TOKEN = 4.0  # English text and a BPE tokenizer, when no tokenizer is at hand to count
TAIL_SHARE = 0.25  # the last, shorter block is kept when it holds at least this share of a block
_BREAKS = (r"\n\n", r"\n", r"(?<=[.!?])\s+")


@dataclass
class Packed:
    """Token blocks and what went into them.

    Attributes:
        blocks: token id lists, each ``length`` long except perhaps the last.
        length: the block length asked for.
        tokens: tokens in the blocks (end-of-sequence separators included).
        dropped: tokens of a final stretch too short to be a block.
    """

    blocks: list[list[int]]
    length: int
    tokens: int
    dropped: int


def sections(text: str, block: int, count=None) -> list[tuple[int, str]]:
    """(start character, text) of consecutive sections of about ``block`` tokens (at most one block where the
    text has breaks) that join back into ``text``.

    Args:
        text: one document.
        block: tokens per training block.
        count: tokens of a piece of text (the tokenizer's count); characters / 4 when None.
    """
    count = count or (lambda piece: len(piece) / CHARS_PER_TOKEN)
    chars_per_token = len(text) / max(count(text), 1) if text else CHARS_PER_TOKEN
    out, start, current, size = [], 0, "", 0.0
    for unit in _units(text, block * chars_per_token):
        n = len(unit) / chars_per_token
        if current and size + n > block:
            out.append((start, current))
            start, current, size = start + len(current), "", 0.0
        current += unit
        size += n
    if current:
        out.append((start, current))
    return out


def _units(text: str, longest: float, level: int = 0) -> list[str]:
    """``text`` cut at paragraph breaks (then lines, then sentences) into pieces shorter than ``longest``
    characters where it can be; each piece keeps the break after it, so the pieces join back into ``text``."""
    if len(text) <= longest or level == len(_BREAKS):
        return [text] if text else []
    parts = re.split(f"({_BREAKS[level]})", text)
    pieces = [parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]
    out = []
    for piece in pieces:
        out += _units(piece, longest, level + 1) if len(piece) > longest else [piece]
    return [p for p in out if p]


def stretches(documents: list[str], starts: list[int], texts: list[str]) -> list[str]:
    """Rows of sections in order, joined into the stretches of contiguous text they came from: the next section
    of the same document continues a stretch; any other row (another document, or a gap where a section was
    held out) starts a new one.

    Args:
        documents: each row's document name.
        starts: each row's start character in its document.
        texts: each row's text.
    """
    out, last_doc, last_end = [], None, None
    for doc, start, text in zip(documents, starts, texts):
        if out and doc == last_doc and start == last_end:
            out[-1] += text
        else:
            out.append(text)
        last_doc, last_end = doc, start + len(text)
    return out


def pack(tokenizer, texts: list[str], length: int) -> Packed:
    """Tokenize ``texts``, end each with the end-of-sequence token, concatenate and cut into ``length`` blocks.

    Args:
        tokenizer: the model's tokenizer (no special tokens are added besides the separators).
        texts: stretches of contiguous text (``stretches``).
        length: tokens per block.
    """
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    if texts:
        for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]:
            stream += ids + ([eos] if eos is not None else [])
    blocks = [stream[i:i + length] for i in range(0, len(stream), length)]
    dropped = 0
    if blocks and len(blocks[-1]) < length and len(blocks[-1]) < max(2, TAIL_SHARE * length):
        dropped = len(blocks.pop())
    return Packed(blocks, length, sum(len(b) for b in blocks), dropped)


def token_counter(tokenizer):
    """A function giving the token count of a piece of text with ``tokenizer`` (None without one)."""
    if tokenizer is None:
        return None
    return lambda piece: len(tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"])

"""General replay: the base model's own answers to everyday instructions, trained beside the user's rows.

Tuning a small model on one narrow set wears away what it knew, and the probe (``probe.py``) shows it: on unseen
manual-page Q&A the tuned SmolLM2-135M answered its general questions in the manual's terse style and kept 45 % of
them. The usual remedy is to keep showing the model examples of its old behaviour while it learns the new one.
The studio has no general instruction set to replay, and a hub download would break offline use, so it replays
the base model itself: its greedy answers to everyday instructions written for the project
(``assets/probes/replay_prompts.json``, none of them a probe question), generated once per base model and kept
in the studio home's cache. ``train.replay`` is their number as a share of the training rows (0 turns it off);
they join the training split only, so the validation loss and the report measure the user's data alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Callable

from ..lm import Answer, generate_answers

REPLAY_FILE = Path(__file__).resolve().parents[3] / "assets" / "probes" / "replay_prompts.json"
# SmolLM2-135M's answers to these run to 100-200 tokens; 64 keep two or three whole sentences and cost a third less
# than 96 (the answers are generated once per base model; batches of 16 use a 2-core CPU better than 8)
ANSWER_TOKENS = 64
BATCH = 16


def load_prompts(path: Path = REPLAY_FILE) -> list[str]:
    """The everyday instructions whose base answers are replayed."""
    return list(json.loads(Path(path).read_text(encoding="utf-8"))["prompts"])


def replay_count(share: float, n_train: int, available: int) -> int:
    """How many replayed rows a job with ``n_train`` training rows mixes in (at least one when the share is set)."""
    if not share or share <= 0 or not n_train:
        return 0
    return min(available, max(1, round(share * n_train)))


def replay_conversations(model, tokenizer, share: float, n_train: int, seed: int, cache: Path | None,
                         model_key: str, prompts: list[str] | None = None,
                         progress: Callable[[int, int], None] | None = None) -> list[list[dict]]:
    """Conversations of the base model answering a seeded sample of the replay prompts.

    Args:
        model: the model before training (the base, or the base wrapped with fresh adapters, which answer as it).
        tokenizer: its tokenizer, with the chat template.
        share: ``train.replay``; ``n_train``: the user's training rows; ``seed``: which prompts are drawn.
        cache: a folder where the base's answers are kept between jobs (None: not kept).
        model_key: names the base model in the cache (its resolved path and the precision it runs in: bf16 and
            fp32 greedy answers can differ, and a job replays the answers of the model it trains).
        prompts: the instructions (``load_prompts()`` when None).
        progress: called with (answers written, answers to write) while the base answers.
    """
    prompts = prompts if prompts is not None else load_prompts()
    count = replay_count(share, n_train, len(prompts))
    if not count:
        return []
    chosen = random.Random(seed).sample(prompts, count)
    answers = [a.text if a.finished else whole_sentences(a.text)
               for a in _base_answers(model, tokenizer, chosen, cache, model_key, progress)]
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            for q, a in zip(chosen, answers) if a]


def whole_sentences(answer: str) -> str:
    """An answer the token limit cut off, up to its last whole sentence or line (trained as it was, it would teach
    the model to stop mid-sentence); empty when not even one is whole."""
    text = answer.strip()
    ends = [m.end() for m in re.finditer(r"(?<!\d)[.!?](?=\s)|\n", text)]
    return text[:ends[-1]].strip() if ends else ""


def _base_answers(model, tokenizer, prompts: list[str], cache: Path | None, model_key: str,
                  progress: Callable[[int, int], None] | None = None) -> list[Answer]:
    """The base's greedy answers, read from the cache where known; the new ones are generated and added."""
    template = getattr(tokenizer, "chat_template", "") or ""
    digest = hashlib.sha256(f"{model_key}\x00{template}\x00{ANSWER_TOKENS}".encode()).hexdigest()[:16]
    path = cache / f"{digest}.json" if cache is not None else None
    known: dict[str, Answer] = {}
    if path is not None and path.is_file():
        try:
            known = {q: Answer(a["text"], bool(a["finished"]))
                     for q, a in json.loads(path.read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, KeyError, TypeError):  # a damaged cache is regenerated
            known = {}
    missing = [p for p in prompts if p not in known]
    if missing:
        known.update(zip(missing, generate_answers(model, tokenizer, missing, ANSWER_TOKENS, BATCH, progress)))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps({q: {"text": a.text, "finished": a.finished} for q, a in known.items()},
                                          indent=1), encoding="utf-8")
            partial.replace(path)  # atomic: two jobs writing at once leave one whole file
    return [known[p] for p in prompts]

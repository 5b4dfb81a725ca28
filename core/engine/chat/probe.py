"""Did it forget? A small general-knowledge probe scored for the base and the tuned chat model.

Fine-tuning a small model on one narrow data set can wear away what it knew ("catastrophic forgetting"). The
studio ships a few dozen short questions with reference answers (``assets/probes/general_knowledge.json``,
written for the project, CC0) and scores both models on them in the chat evaluation:

- the loss on the reference answers' tokens (as the validation loss, but on general questions);
- whether the model's own greedy answer contains the reference (or an accepted variant), case-insensitively.

The report says it in words: "kept 97 % of its general answers (35 of 36 right, the base had 36)".
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..lm import answers as greedy_answers
from .collate import PaddedCollator, encode_all
from .loss import answer_loss

PROBE_FILE = Path(__file__).resolve().parents[3] / "assets" / "probes" / "general_knowledge.json"
ANSWER_TOKENS = 24
BATCH = 12


def load_probe(path: Path = PROBE_FILE) -> list[dict[str, Any]]:
    """The probe's items: ``q`` (question), ``a`` (reference answer), optional ``accept`` (other right answers)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["items"]


def score(model, tokenizer, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Answer-token loss on the references, and how many greedy answers contain a right answer.

    Args:
        model: a causal LM (peft-wrapped or not), in eval mode.
        tokenizer: its tokenizer (with the chat template).
        items: the probe (``load_probe()`` when None).
    """
    items = items if items is not None else load_probe()
    conversations = [[{"role": "user", "content": i["q"]}, {"role": "assistant", "content": i["a"]}] for i in items]
    rows = encode_all(tokenizer, conversations, None)
    collate = PaddedCollator(tokenizer.pad_token_id)
    loss = answer_loss(model, [collate(rows[s:s + BATCH]) for s in range(0, len(rows), BATCH)])
    answers = greedy_answers(model, tokenizer, [i["q"] for i in items], ANSWER_TOKENS, BATCH)
    right = [_contains(answer, [item["a"], *item.get("accept", [])]) for item, answer in zip(items, answers)]
    return {"questions": len(items), "answer_loss": loss["loss"], "right": int(sum(right)),
            "answers": [{"question": i["q"], "reference": i["a"], "answer": a, "right": r}
                        for i, a, r in zip(items, answers, right)]}


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def _contains(answer: str, references: list[str]) -> bool:
    said = f" {_normal(answer)} "
    return any(f" {_normal(ref)} " in said for ref in references if _normal(ref))


def compare(base: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
    """eval.json's ``probe``: both scores, the share of general answers kept, and a sentence saying it.

    Args:
        base: ``score`` of the base model.
        tuned: ``score`` of the tuned model.
    """
    n = tuned["questions"]
    kept = tuned["right"] / base["right"] if base["right"] else None
    change = (tuned["answer_loss"] - base["answer_loss"]) / base["answer_loss"] if base["answer_loss"] else None
    if kept is None:
        words = (f"The base model answered none of the {n} general-knowledge questions right; the tuned model "
                 f"answered {tuned['right']}.")
    else:
        words = (f"Kept {min(kept, 9.99):.0%} of its general answers: {tuned['right']} of {n} general-knowledge "
                 f"questions right after tuning, {base['right']} before")
        if change is not None:
            words += f"; loss on their reference answers {'+' if change >= 0 else ''}{change:.0%}."
    examples = [{"question": b["question"], "reference": b["reference"], "base": b["answer"], "tuned": t["answer"]}
                for b, t in zip(base["answers"], tuned["answers"]) if b["right"] != t["right"]]
    return {"questions": n, "base": {"right": base["right"], "answer_loss": base["answer_loss"]},
            "tuned": {"right": tuned["right"], "answer_loss": tuned["answer_loss"]}, "kept": kept,
            "loss_change": change, "message": words, "changed_answers": examples}

"""Statistics for the preview: token lengths with the model's tokenizer, truncation, the rendered template.

Tokenizing is batched (fast tokenizers split the work natively) and, above ``SAMPLE_ROWS`` rows, done on a
seeded sample; the summary says when figures are estimates from a sample.
"""
from __future__ import annotations

import numpy as np

SAMPLE_ROWS = 2000
HISTOGRAM_BINS = 20


def render_chat(tokenizer, conversations: list[list[dict]]) -> tuple[list[str], bool]:
    """Conversations as the model sees them, and whether the tokenizer's own chat template was used.

    Args:
        tokenizer: a transformers tokenizer; without a chat template, turns are written as 'role: content'.
        conversations: lists of {"role", "content"} turns.
    """
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(conversations, tokenize=False)
        return ([rendered] if isinstance(rendered, str) else list(rendered)), True
    return ["\n".join(f"{t['role']}: {t['content']}" for t in turns) for turns in conversations], False


def token_lengths(tokenizer, task: str, items: list, seed: int = 0) -> tuple[np.ndarray, np.ndarray, bool]:
    """Token counts per example, the positions measured, and whether the template was applied.

    Args:
        tokenizer: a transformers tokenizer.
        task: "chat" (items are conversations) or "text-classification" (items are strings).
        items: the training examples.
        seed: fixes the sample when there are more than ``SAMPLE_ROWS`` items.
    """
    positions = np.arange(len(items))
    if len(items) > SAMPLE_ROWS:
        positions = np.sort(np.random.default_rng(seed).choice(len(items), SAMPLE_ROWS, replace=False))
    chosen = [items[i] for i in positions]
    if not chosen:
        return np.array([], dtype=int), positions, False
    if task == "chat":
        texts, templated = render_chat(tokenizer, chosen)
        encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    else:
        templated = False
        encoded = tokenizer(chosen, truncation=False, verbose=False)
    return np.array([len(ids) for ids in encoded["input_ids"]]), positions, templated


def length_summary(lengths: np.ndarray, total: int) -> dict:
    """Percentiles and histogram bins of token lengths (JSON-able).

    Args:
        lengths: measured token counts.
        total: how many examples there are (more than measured when sampled).
    """
    if len(lengths) == 0:
        return {}
    counts, edges = np.histogram(lengths, bins=min(HISTOGRAM_BINS, max(1, len(np.unique(lengths)))))
    p = np.percentile(lengths, [50, 90, 95, 99])
    return {
        "measured": int(len(lengths)),
        "total": int(total),
        "sampled": bool(len(lengths) < total),
        "min": int(lengths.min()),
        "mean": round(float(lengths.mean()), 1),
        "p50": int(p[0]), "p90": int(p[1]), "p95": int(p[2]), "p99": int(p[3]),
        "max": int(lengths.max()),
        "histogram": {"edges": [round(float(e), 1) for e in edges], "counts": counts.astype(int).tolist()},
    }


def class_table(labels: list[str], train_ids: np.ndarray, val_ids: np.ndarray | None) -> list[dict]:
    """One row per class: its name, training and validation counts and share of the training rows."""
    train_counts = np.bincount(train_ids, minlength=len(labels))
    val_counts = np.bincount(val_ids, minlength=len(labels)) if val_ids is not None else None
    total = max(int(train_counts.sum()), 1)
    return [
        {
            "label": name,
            "id": i,
            "train": int(train_counts[i]),
            "validation": int(val_counts[i]) if val_counts is not None else 0,
            "share": round(float(train_counts[i]) / total, 4),
        }
        for i, name in enumerate(labels)
    ]

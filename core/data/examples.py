"""One-click example datasets shipped in ``assets/examples`` (built by scripts under ``scripts/``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import core


@dataclass(frozen=True)
class Example:
    """An example dataset: where it is, what it is for and the model it suits best."""

    key: str
    title: str
    task: str
    path: str  # relative to the repository root
    description: str
    model: str  # catalog key suggested for it


EXAMPLES: tuple[Example, ...] = (
    Example(
        key="kettlebird-support",
        title="Kettlebird customer support (chat)",
        task="chat",
        path="assets/examples/kettlebird_support.csv",
        description="180 customer questions about Kettlebird's smart kettles, answered in the support team's "
                    "house style with the company's fixed facts (warranty, returns, descaling, the app). "
                    "After tuning, the model answers as Kettlebird support does.",
        model="smollm2-135m-instruct",
    ),
    Example(
        key="support-tickets",
        title="Support tickets by department (text classification)",
        task="text-classification",
        path="assets/examples/support_tickets.csv",
        description="362 customer messages, each written by hand, routed to billing, shipping, technical, "
                    "account, returns or product feedback. The departments share vocabulary, so keywords "
                    "alone do not separate them.",
        model="minilm-l6",
    ),
    Example(
        key="digits",
        title="Handwritten digits (image classification)",
        task="image-classification",
        path="assets/examples/digits",
        description="500 real handwritten digit scans from scikit-learn (50 per digit), upscaled from 8x8 to "
                    "32x32 pixels, one folder per digit.",
        model="efficientnet-lite0",
    ),
)


def example_path(key: str) -> Path:
    """The absolute path of an example dataset.

    Args:
        key: an ``Example.key`` from ``EXAMPLES``.
    """
    for example in EXAMPLES:
        if example.key == key:
            return Path(core.__file__).resolve().parent.parent / example.path
    raise KeyError(f"no example dataset '{key}'; known: {', '.join(e.key for e in EXAMPLES)}")

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
    Example(
        key="kettlebird-preferences",
        title="Kettlebird support replies, preferred vs rejected (preference tuning)",
        task="preference",
        path="assets/examples/kettlebird_preferences.csv",
        description="246 pairs: a customer question to Kettlebird support, the team's answer (chosen) and a reply "
                    "it would not send (rejected): the same answer with one wrong fact, a deflection to the "
                    "manual, a curt reply, the answer to another question, or a guess. After DPO the model prefers "
                    "the team's answers on questions it never saw.",
        model="smollm2-135m-instruct",
    ),
    Example(
        key="kettlebird-manuals",
        title="Kettlebird manuals: PDF, Word, Markdown and text (domain adaptation)",
        task="text-completion",
        path="assets/examples/kettlebird_manuals",
        description="Ten documents about Kettlebird's kettles: two user guides (PDF), a quick start and the app "
                    "guide (Word), care, troubleshooting and FAQ pages (Markdown), warranty, safety and brewing "
                    "notes (text). The model reads the domain's language and facts; whole documents are held out "
                    "to measure perplexity. Chat tuning on the support answers can follow.",
        model="smollm2-135m-instruct",
    ),
    Example(
        key="debian-sizes",
        title="Debian packages: installed size from the description (text regression)",
        task="text-regression",
        path="assets/examples/debian_sizes.csv",
        description="800 real Debian packages: each one's name, synopsis and the first paragraph of its "
                    "description, and how much disk it takes once installed, as log10 of kilobytes (3 is 1 MB, 5 "
                    "is 100 MB). The words say something (a dummy package, a font, game data, a library, its "
                    "documentation) but far from everything: a real, noisy number to predict.",
        model="minilm-l6",
    ),
    Example(
        key="shape-counts",
        title="Count the circles (image regression)",
        task="image-regression",
        path="assets/examples/shape_counts",
        description="300 small generated scenes and a metadata.csv (file_name, circles): 1 to 12 circles of "
                    "random sizes and colours on random backgrounds, among squares and triangles that do not "
                    "count. The model learns to say how many circles a picture holds.",
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

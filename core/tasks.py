"""The tasks the studio tunes models for: each declares itself once here, and the rest of the code asks.

Data only (no torch, no transformers): the config checks, the catalog, the page and the model card read it.
The engine keeps its own table from task to training recipe (``core.engine.recipes``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One task.

    Args:
        key: what configs say (``task: chat``).
        title: what the page shows.
        modality: what the model reads: ``text`` or ``image``.
        kind: ``generation`` (a causal LM answers) or ``classification`` (a class per example).
        default_strategy: the strategy a job gets when it names none.
        pipeline_tag: the Hugging Face pipeline tag for the model card.
        metric: the headline metric in eval.json under ``tuned``.
        higher_is_better: whether a larger ``metric`` is better.
    """

    key: str
    title: str
    modality: str
    kind: str
    default_strategy: str
    pipeline_tag: str
    metric: str
    higher_is_better: bool


TASK_LIST: tuple[Task, ...] = (
    Task("chat", "Chat (teach answers)", "text", "generation", "lora", "text-generation", "eval_loss", False),
    Task("text-classification", "Text classification", "text", "classification", "auto",
         "text-classification", "accuracy", True),
    Task("image-classification", "Image classification", "image", "classification", "auto",
         "image-classification", "accuracy", True),
)
TASKS: tuple[str, ...] = tuple(t.key for t in TASK_LIST)


def get_task(key: str) -> Task:
    """The task called ``key``; KeyError naming the known tasks otherwise."""
    for task in TASK_LIST:
        if task.key == key:
            return task
    raise KeyError(f"unknown task '{key}': use one of {', '.join(TASKS)}")

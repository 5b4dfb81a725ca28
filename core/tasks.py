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
        kind: ``generation`` (a causal LM answers), ``classification`` (a class per example) or ``regression``
            (a number per example).
        default_strategy: the strategy a job gets when it names none.
        pipeline_tag: the Hugging Face pipeline tag for the model card.
        metric: the headline metric in eval.json under ``tuned``.
        higher_is_better: whether a larger ``metric`` is better.
        model_task: the catalog task whose models it tunes (preference tuning and documents tune chat models);
            empty for the task's own (see ``models``).
        sequences: sequences one training example runs through the model (2 for a chosen/rejected pair); the
            memory estimate scales by it.
    """

    key: str
    title: str
    modality: str
    kind: str
    default_strategy: str
    pipeline_tag: str
    metric: str
    higher_is_better: bool
    model_task: str = ""
    sequences: int = 1

    @property
    def models(self) -> str:
        """The catalog task whose models this task tunes (``chat`` for ``preference``)."""
        return self.model_task or self.key


TASK_LIST: tuple[Task, ...] = (
    Task("chat", "Chat (teach answers)", "text", "generation", "lora", "text-generation", "eval_loss", False),
    Task("text-classification", "Text classification", "text", "classification", "auto",
         "text-classification", "accuracy", True),
    Task("image-classification", "Image classification", "image", "classification", "auto",
         "image-classification", "accuracy", True),
    Task("preference", "Preference tuning (chosen vs rejected answers)", "text", "generation", "dpo",
         "text-generation", "preference_accuracy", True, model_task="chat", sequences=2),
    Task("text-completion", "Domain adaptation on documents", "text", "generation", "lora", "text-generation",
         "perplexity", False, model_task="chat"),
    Task("text-regression", "Text regression (predict a number)", "text", "regression", "auto",
         "text-classification", "mae", False, model_task="text-classification"),
    Task("image-regression", "Image regression (predict a number)", "image", "regression", "auto",
         "image-classification", "mae", False, model_task="image-classification"),
)
TASKS: tuple[str, ...] = tuple(t.key for t in TASK_LIST)


def models_for(key: str) -> str:
    """The catalog task whose models task ``key`` tunes (``key`` itself for an unknown task)."""
    try:
        return get_task(key).models
    except KeyError:
        return key


def get_task(key: str) -> Task:
    """The task called ``key``; KeyError naming the known tasks otherwise."""
    for task in TASK_LIST:
        if task.key == key:
            return task
    raise KeyError(f"unknown task '{key}': use one of {', '.join(TASKS)}")

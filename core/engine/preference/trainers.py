"""TRL's preference trainers, as the studio runs them: DPO (``trl.DPOTrainer``) and ORPO
(``trl.experimental.orpo.ORPOTrainer``), with checkpoints written atomically, useful tokens counted for the
throughput figure, and their reward metrics under short names on the curves.

DPO takes the pairs in TRL's conversational shape and renders them with the model's chat template itself; ORPO
(in TRL 1.16 still the older trainer) gets the rendered prompt and each answer through its end-of-turn token as
text, so neither trainer adds a second beginning-of-text token or a stray end token.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import datasets
from trl import DPOConfig, DPOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

from ...models.templates import render
from ..callbacks import ItemCounter, ReporterCallback
from ..checkpoints import AtomicCheckpoints

# TRL's metric names -> the names on the studio's curves (eval events carry them without the eval_ prefix)
METRIC_NAMES = {"rewards/accuracies": "reward_accuracy", "rewards/margins": "reward_margin",
                "rewards/chosen": "reward_chosen", "rewards/rejected": "reward_rejected",
                "logps/chosen": "logp_chosen", "logps/rejected": "logp_rejected", "log_odds_ratio": "log_odds_ratio",
                "nll_loss": "nll_loss"}


class _Counting:
    """Counts the useful (non-padding) tokens of training batches: prompt + answer, both sides of each pair."""

    counter: ItemCounter | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.counter is not None and model.training:
            self.counter.add(sum(int(v.sum()) for k, v in inputs.items()
                                 if k.endswith("attention_mask") and not k.startswith("prompt")))
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)


class StudioDPOTrainer(AtomicCheckpoints, _Counting, DPOTrainer):
    """``trl.DPOTrainer`` with atomic checkpoints and a token counter."""


class StudioORPOTrainer(AtomicCheckpoints, _Counting, ORPOTrainer):
    """``trl.experimental.orpo.ORPOTrainer`` with atomic checkpoints and a token counter."""


@dataclass(frozen=True)
class Objective:
    """How one preference objective trains: its TRL config and trainer, the shape its pairs come in, and the
    arguments it needs beyond the shared ones."""

    config: type
    trainer: type
    pairs: Callable[[Any, Any], datasets.Dataset]  # (studio pairs, tokenizer) -> the trainer's dataset
    extra: dict = field(default_factory=dict)


def conversational_pairs(pairs, tokenizer) -> datasets.Dataset:
    """TRL's conversational shape: the prompt turns, and each answer as a one-turn assistant conversation (the
    trainer renders them with the tokenizer's chat template)."""
    return pairs.map(lambda row: {"chosen": [{"role": "assistant", "content": row["chosen"]}],
                                  "rejected": [{"role": "assistant", "content": row["rejected"]}]})


def rendered_pairs(pairs, tokenizer) -> datasets.Dataset:
    """Text rendered with the chat template: the prompt with the assistant header, each answer through its
    end-of-turn token."""
    def rendered(row):
        prompt = render(tokenizer, row["prompt"], add_generation_prompt=True)
        return {"prompt": prompt, "chosen": answer_text(tokenizer, row["prompt"], row["chosen"], prompt),
                "rejected": answer_text(tokenizer, row["prompt"], row["rejected"], prompt)}

    return pairs.map(rendered, remove_columns=pairs.column_names)


OBJECTIVES = {
    "dpo": Objective(DPOConfig, StudioDPOTrainer, conversational_pairs),
    # the older trainer keeps its own columns (prompt_input_ids, chosen_labels...) past the Trainer's filter
    "orpo": Objective(ORPOConfig, StudioORPOTrainer, rendered_pairs, {"remove_unused_columns": False}),
}


class PreferenceReporter(ReporterCallback):
    """The reporter bridge, with TRL's reward metrics renamed for the curves and its logit means left out."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        renamed = {}
        for key, value in (logs or {}).items():
            prefix = "eval_" if key.startswith("eval_") else ""
            name = key.removeprefix("eval_")
            if name.startswith("logits/") or name in ("entropy", "num_tokens", "mean_token_accuracy"):
                continue
            renamed[prefix + METRIC_NAMES.get(name, name)] = value
        return super().on_log(args, state, control, logs=renamed, **kwargs)


@contextmanager
def quiet_maps():
    """No datasets progress bars while pairs are mapped and tokenized (their carriage returns garble a log)."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def trl_pairs(pairs, objective: str, tokenizer) -> datasets.Dataset:
    """The studio's pairs (``prompt`` turns, ``chosen``, ``rejected``) in the shape the objective's trainer reads.

    Args:
        pairs: a ``datasets.Dataset`` of normalised pairs.
        objective: ``dpo`` or ``orpo`` (``Strategy.objective``).
        tokenizer: the model's tokenizer.
    """
    return OBJECTIVES[objective].pairs(pairs, tokenizer)


def answer_text(tokenizer, prompt: list[dict], answer: str, rendered_prompt: str) -> str:
    """The answer as the chat template writes it after the prompt, through its end-of-turn token."""
    text = render(tokenizer, list(prompt) + [{"role": "assistant", "content": answer}])
    tail = text[len(rendered_prompt):] if text.startswith(rendered_prompt) else answer
    eos = tokenizer.eos_token or ""
    return tail[: tail.index(eos) + len(eos)] if eos and eos in tail else tail


def make_trainer(objective: str, model, tokenizer, peft_config, train_pairs, eval_pairs, arguments: dict,
                 beta: float, max_length: int, callbacks: list, counter: ItemCounter):
    """The TRL trainer for ``objective``, ready to ``train()``.

    Args:
        objective: ``dpo`` or ``orpo`` (``Strategy.objective``).
        model: the loaded causal LM (TRL wraps it in the adapter ``peft_config`` describes).
        tokenizer: its tokenizer.
        peft_config: a peft config (LoRA), or None to train every weight.
        train_pairs, eval_pairs: datasets from ``trl_pairs`` (eval may be None).
        arguments: ``TrainingArguments`` fields shared with the studio's other recipes.
        beta: the objective's beta (DPO: how far from the base; ORPO: the weight of the odds-ratio term).
        max_length: prompt + answer tokens at most.
        callbacks: Trainer callbacks.
        counter: counts useful tokens.
    """
    chosen = OBJECTIVES[objective]
    config = chosen.config(**{**arguments, **chosen.extra}, beta=beta, max_length=max_length)
    trainer = chosen.trainer(model=model, args=config, train_dataset=train_pairs, eval_dataset=eval_pairs,
                            processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    trainer.counter = counter
    return trainer

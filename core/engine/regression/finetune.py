"""Fine-tuning a regressor (LoRA and its variants, or full) with the transformers ``Trainer``: the classifiers'
recipe with a one-output head.

The head is a transformers model's own with ``problem_type="regression"`` (EfficientNet: a one-output ``_fc``). It
trains on standardised targets with the Huber loss (squared error within one spread of the target, absolute
beyond: transformers would use the squared error, which lets a few extreme rows steer a small data set), and once
training ends the target's scale is folded into the head, so the saved model outputs the target's units. The
Trainer's evaluations during training report the mean absolute error, RMSE and R² in those units.
"""
from __future__ import annotations

import numpy as np
import torch
from transformers import Trainer

from ...models import classifiers as cm
from ..callbacks import ItemCounter
from ..checkpoints import AtomicCheckpoints
from ..classify.finetune import Collator, FineTuneRecipe
from ..context import TrainOutcome
from . import metrics
from .base import RegressionBase
from .objective import HUBER_DELTA


class TargetCollator(Collator):
    """Rows {item, target} -> the model's inputs and standardised float ``labels``."""

    def __init__(self, inputs: cm.ModelInputs, column: str, objective, counter=None) -> None:
        super().__init__(inputs, column, counter)
        self.objective = objective

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.inputs([row[self.column] for row in rows])
        batch["labels"] = self.objective.targets([float(row["target"]) for row in rows])
        if self.counter is not None:
            self.counter.add(len(rows))
        return batch


class RegressionFineTuneRecipe(RegressionBase, FineTuneRecipe):
    """LoRA (or a variant) or full fine-tuning of a text or image regressor."""

    @property
    def new_head(self) -> str:
        return "a new one-output (regression) head"

    def collator(self, counter: ItemCounter):
        return TargetCollator(self.inputs, self.column, self.objective, counter)

    @property
    def trainer_class(self):
        return RegressorTrainer

    @property
    def compute_metrics(self):
        objective = self.objective

        def compute(eval_pred) -> dict[str, float]:
            """MAE, RMSE and R² in the target's units (the model still outputs standardised values)."""
            outputs = eval_pred.predictions[0] if isinstance(eval_pred.predictions, (tuple, list)) \
                else eval_pred.predictions
            scale = lambda v: np.asarray(v, dtype=np.float64).reshape(-1) * objective.std + objective.mean  # noqa
            return metrics.scores(scale(eval_pred.label_ids), scale(outputs))

        return compute

    def train(self) -> TrainOutcome:
        """Train, then fold the target's scale into the head (the model saved answers in the target's units)."""
        outcome = super().train()
        model = self.trainer.accelerator.unwrap_model(self.model) if self.trainer is not None else self.model
        self.objective.finish(model)
        return outcome


class RegressorTrainer(AtomicCheckpoints, Trainer):
    """The Trainer with the Huber loss on a one-output head, for transformers models and plain modules alike."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = cm.logits_of(model, inputs)
        loss = torch.nn.functional.huber_loss(outputs.float().reshape(-1), labels.float(), delta=HUBER_DELTA)
        return (loss, {"logits": outputs}) if return_outputs else loss

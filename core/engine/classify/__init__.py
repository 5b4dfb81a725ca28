"""Text and image classifiers: head-only on cached features, LoRA and full fine-tuning, evaluated against real
baselines (majority class, the base model's nearest centroid, and a classical model)."""
from .finetune import FineTuneRecipe
from .head_only import HeadOnlyRecipe

__all__ = ["FineTuneRecipe", "HeadOnlyRecipe"]

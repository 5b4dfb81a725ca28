"""Preference tuning of chat models: DPO or ORPO on chosen/rejected pairs with LoRA, through TRL's trainers."""
from .recipe import PreferenceRecipe

__all__ = ["PreferenceRecipe"]

"""Chat (instruction) tuning of causal language models: LoRA, QLoRA or full, with the loss on answers only."""
from .recipe import ChatRecipe

__all__ = ["ChatRecipe"]

"""Domain adaptation: continued training of a chat model on a domain's documents, packed into exact blocks."""
from .recipe import CompletionRecipe

__all__ = ["CompletionRecipe"]

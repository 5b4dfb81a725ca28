"""Conversations as a chat model sees them: rendered through its tokenizer's chat template (training, the
playground, the API and batch prediction all render through here)."""
from __future__ import annotations


class ChatTemplateMissing(ValueError):
    """The tokenizer has no chat template, so conversations cannot be rendered for this model."""


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it (text), through the tokenizer's chat template.

    Args:
        tokenizer: a transformers tokenizer with ``chat_template`` set.
        messages: ``[{"role": ..., "content": ...}, ...]``.
        add_generation_prompt: end with the header that opens an assistant turn.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateMissing(
            "This model's tokenizer has no chat template, so it cannot be trained on conversations. "
            "Pick an instruction-tuned model (its name usually ends in -Instruct or -Chat)."
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


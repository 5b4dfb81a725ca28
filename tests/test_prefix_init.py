"""Prefix tuning starts from a real sentence's keys and values, not random vectors: before its first step the
prefixed model answers exactly as the untouched model does with that sentence before the prompt."""
from __future__ import annotations

import copy

import torch

from core.config import TrainConfig
from core.strategies import PREFIX_INIT_TEXT, PREFIX_TOKENS, apply_prefix
from tests.test_chat_support import tiny_model_folder


def _tiny(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_folder(tmp_path)
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_the_prefix_starts_as_the_init_sentence_before_the_prompt(tmp_path):
    base, tok = _tiny(tmp_path)
    prefixed = apply_prefix(copy.deepcopy(base), "chat", TrainConfig(), tokenizer=tok).eval()
    prompt = tok("What colour is the plum?", add_special_tokens=False)["input_ids"]
    init = tok(PREFIX_INIT_TEXT, add_special_tokens=False)["input_ids"]
    init = (init * (PREFIX_TOKENS // len(init) + 1))[:PREFIX_TOKENS]
    with torch.no_grad():
        tuned = prefixed(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt))).logits
        reference = base(input_ids=torch.tensor([init + prompt])).logits[:, PREFIX_TOKENS:]
    torch.testing.assert_close(tuned, reference, atol=1e-4, rtol=1e-4)
    # and only the prefix trains
    trained = [n for n, p in prefixed.named_parameters() if p.requires_grad]
    assert trained and all("prompt_encoder" in n for n in trained), trained


def test_without_a_tokenizer_the_prefix_is_peft_s_random_start(tmp_path):
    base, _ = _tiny(tmp_path)
    prefixed = apply_prefix(copy.deepcopy(base), "chat", TrainConfig())
    weight = prefixed.prompt_encoder[prefixed.active_adapter].embedding.weight
    assert weight.shape[0] == PREFIX_TOKENS and 0.8 < float(weight.detach().std()) < 1.2  # nn.Embedding's N(0, 1)

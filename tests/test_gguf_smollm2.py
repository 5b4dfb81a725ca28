"""GGUF export of the real packaged SmolLM2-135M-Instruct (offline): the f16 file comes back through transformers'
GGUF reader with the same tokenizer, chat template and greedy answers; the Ollama template matches its Jinja one."""
from __future__ import annotations

import pytest
import torch

from core.export import gguf as G
from core.export import ollama
from tests.test_chat_support import conversations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(converted_smollm2):
    from core.models import load_causal_lm, load_tokenizer

    _, resolved, _, _ = converted_smollm2
    return load_causal_lm(resolved, dtype=torch.float32).eval(), load_tokenizer(resolved)


def test_smollm2_round_trips_through_f16_gguf(smollm2, tmp_path):
    model, tokenizer = smollm2
    path = tmp_path / "smollm2-f16.gguf"
    G.write_gguf(model, tokenizer, path, "f16", name="smollm2", base_model="smollm2-135m-instruct")
    facts = G.read_back(path, model.config, tokenizer)
    assert facts == {"architecture": "llama", "tensors": 272, "tokens": 49152,
                     "template_chars": len(tokenizer.chat_template)}
    check = G.check_gguf(path, model, tokenizer, max_new_tokens=16)
    assert check["same_answers"] == check["prompts"] == 2
    assert check["same_tokenization"] and check["same_template"]
    assert check["answers"][0]["gguf"] == "The capital of France is Paris."


def test_smollm2_q8_0_is_half_the_size_and_reads_back(smollm2, tmp_path):
    model, tokenizer = smollm2
    sizes = {}
    for kind in ("f16", "q8_0"):
        path = tmp_path / f"smollm2-{kind}.gguf"
        G.write_gguf(model, tokenizer, path, kind)
        G.read_back(path, model.config, tokenizer)
        sizes[kind] = path.stat().st_size
    assert 0.5 < sizes["q8_0"] / sizes["f16"] < 0.56


def test_smollm2_chat_template_becomes_an_ollama_template(smollm2):
    _, tokenizer = smollm2
    parts = ollama.template_parts(tokenizer)
    assert parts.default_system.startswith("You are a helpful AI assistant named SmolLM")
    for conversation in conversations(12):
        expected = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert ollama.render_parts(parts, conversation, True) == expected
    assert ollama.stop_tokens(parts, tokenizer) == ["<|im_end|>"]

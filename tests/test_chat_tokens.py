"""Chat tokenisation and the loss: labels on answers only, the fast loss equals the plain one, packing is exact."""
from __future__ import annotations

import torch

from core.engine.chat.collate import IGNORE, PackedCollator, PaddedCollator, encode_all, encode_chat
from core.engine.chat.loss import answer_loss_sum, full_logits_loss
from tests.test_chat_support import conversations, save_tiny_llama, save_tiny_tokenizer

torch.set_num_threads(1)


def _labelled_text(tok, row) -> list[str]:
    """The runs of consecutive labelled tokens, decoded."""
    runs, current = [], []
    for token, label in zip(row["input_ids"], row["labels"]):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    return runs


def test_labels_cover_answers_and_end_of_turn_only(tmp_path):
    tok = save_tiny_tokenizer(tmp_path)
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What colour is the sky?"},
                {"role": "assistant", "content": "The sky is blue."},
                {"role": "user", "content": "Are you sure?"},
                {"role": "assistant", "content": "Yes, blue."}]
    row = encode_chat(tok, messages)
    assert _labelled_text(tok, row) == ["The sky is blue.<|im_end|>", "Yes, blue.<|im_end|>"]
    # the newline the template puts after the end-of-turn token is not learned
    assert row["labels"][-1] == IGNORE


def test_truncation_keeps_lengths_and_drops_rows_without_answers(tmp_path):
    tok = save_tiny_tokenizer(tmp_path)
    row = encode_chat(tok, conversations(1)[0], max_length=10)
    assert len(row["input_ids"]) == len(row["labels"]) == 10
    assert encode_all(tok, conversations(4), max_length=10) == []  # every answer was cut off
    assert len(encode_all(tok, conversations(4), max_length=None)) == 4


def _model_and_rows(tmp_path):
    tok = save_tiny_tokenizer(tmp_path)
    from transformers import AutoModelForCausalLM
    save_tiny_llama(tmp_path / "m", len(tok))
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32).eval()
    return tok, model, encode_all(tok, conversations(6), None)


def test_fast_loss_equals_full_logits_loss(tmp_path):
    tok, model, rows = _model_and_rows(tmp_path)
    batch = PaddedCollator(tok.pad_token_id)(rows)
    with torch.no_grad():
        total, count = answer_loss_sum(model, batch)
        plain = full_logits_loss(model, batch)
        # and the model's own shifted loss on unshifted labels agrees too
        own = model(**PaddedCollator(tok.pad_token_id, shift=False)(rows)).loss
    assert count == sum(sum(label != IGNORE for label in r["labels"]) for r in rows)
    assert torch.allclose(total / count, plain, atol=1e-5)
    assert torch.allclose(plain, own, atol=1e-5)


def test_fast_loss_gradients_match(tmp_path):
    tok, model, rows = _model_and_rows(tmp_path)
    batch = PaddedCollator(tok.pad_token_id)(rows)
    total, count = answer_loss_sum(model, batch)
    (total / count).backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    full_logits_loss(model, batch).backward()
    for a, p in zip(fast, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5)


def test_packed_batch_gives_the_padded_loss(tmp_path):
    tok, model, rows = _model_and_rows(tmp_path)
    with torch.no_grad():
        padded_sum, padded_n = answer_loss_sum(model, PaddedCollator(tok.pad_token_id)(rows))
        packed = PackedCollator()(rows)
        packed_sum, packed_n = answer_loss_sum(model, packed)
    assert packed["input_ids"].shape[0] == 1
    assert packed_n == padded_n
    assert torch.allclose(packed_sum, padded_sum, rtol=1e-5)


def test_short_first_sampler_groups_by_length_and_starts_short():
    import random

    from core.engine.chat.loss import ShortFirstGroupedSampler

    rng = random.Random(0)
    lengths = [rng.randint(20, 400) for _ in range(203)]
    torch.manual_seed(0)
    order = list(ShortFirstGroupedSampler(lengths, group=8))
    assert sorted(order) == list(range(len(lengths)))  # every row once per epoch
    steps = [order[i:i + 8] for i in range(0, len(order), 8)]
    first = sum(lengths[i] for i in steps[0])
    assert first <= min(sum(lengths[i] for i in s) for s in steps[:-1] if len(s) == 8)
    # rows of a step are of about one length: padding to the longest row wastes little
    padded = sum(len(s) * max(lengths[i] for i in s) for s in steps)
    assert sum(lengths) / padded > 0.85  # random batches of 8: about 0.55
    again = ShortFirstGroupedSampler(lengths, group=8)
    assert list(again) == order  # the order is the seed's and the epoch's, whatever the global RNG did
    again.set_epoch(1)
    assert list(again) != order  # reshuffled each epoch
    assert list(ShortFirstGroupedSampler(lengths, group=8, seed=1)) != order  # and for another seed

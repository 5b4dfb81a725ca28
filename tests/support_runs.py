"""Finished runs of tiny models, built once per test session and shared by the export, predict, serve, tracking
and model-card tests (they only read the runs). Each is a real ``run_job`` from a file on disk, so
``studio eval --data`` can re-plan it.
"""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

from core.config import JobConfig
from core.engine.runner import run_job
from core.home import Home
from tests.test_chat_support import conversations, tiny_model_folder
from tests.test_classify_support import WORDS, image_rows, text_rows, tiny_bert, tiny_vit

_BUILT: dict[str, object] = {}  # name -> what was built, for the session (the runs live in its temp folder)
TOPICS = list(WORDS)


def _once(name: str, factory, build):
    if name not in _BUILT:
        _BUILT[name] = build(factory.mktemp(name))
    return _BUILT[name]


def home(factory) -> Home:
    """One studio home for the shared runs."""
    return _once("home", factory, lambda root: Home.resolve(root / "studio-home"))


def write_topics(path: Path, n: int, seed: int, extra: bool = False) -> Path:
    """A CSV of short topic texts: ``id``, ``text``, ``topic`` (and a ``note`` column when ``extra``)."""
    rows = text_rows(n, seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "topic"] + (["note"] if extra else []))
        for i, (text, label) in enumerate(zip(rows["text"], rows["label"])):
            writer.writerow([i, text, TOPICS[label]] + ([f"n{i}"] if extra else []))
    return path


def _text_run(root: Path, factory, strategy: str, **train):
    bert = _once("bert", factory, lambda r: tiny_bert(r / "bert"))
    data = write_topics(root / "train.csv", 120, 1)
    config = JobConfig(task="text-classification", model=str(bert), strategy=strategy, name=f"topics {strategy}")
    config.data.path = str(data)
    config.train.threads = 2
    for key, value in train.items():
        setattr(config.train, key, value)
    return run_job(config, home(factory))


def head_only_text_run(factory):
    """A head-only topic classifier on a tiny BERT (trains in seconds)."""
    return _once("text-head", factory, lambda root: _text_run(root, factory, "head-only"))


def full_text_run(factory):
    """A fully fine-tuned topic classifier on a tiny BERT."""
    return _once("text-full", factory, lambda root: _text_run(root, factory, "full", epochs=2, learning_rate=3e-3))


def colour_images(folder: Path, n: int, seed: int) -> Path:
    """Class folders of noisy solid-colour PNGs (red, green, blue)."""
    image_rows(folder, n, seed)
    return folder


def zipped(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, path.relative_to(folder).as_posix())
    return target


def head_only_image_run(factory):
    """A head-only colour classifier on a tiny ViT."""
    def build(root: Path):
        vit = _once("vit", factory, lambda r: tiny_vit(r / "vit"))
        config = JobConfig(task="image-classification", model=str(vit), strategy="head-only", name="colours")
        config.data.path = str(colour_images(root / "train", 45, 1))
        config.train.threads = 2
        return run_job(config, home(factory))
    return _once("image-head", factory, build)


def chat_run(factory):
    """A LoRA chat run on the tiny Llama (two short epochs: the point is a real adapter, not a good model)."""
    def build(root: Path):
        folder = tiny_model_folder(root)
        data = root / "chat.jsonl"
        data.write_text("\n".join(json.dumps({"messages": m}) for m in conversations(60)), encoding="utf-8")
        config = JobConfig(task="chat", model=str(folder), strategy="lora", name="tiny chat")
        config.data.path = str(data)
        config.train.epochs = 6
        config.train.learning_rate = 1e-2
        config.train.threads = 2
        config.train.precision = "fp32"
        return run_job(config, home(factory))
    return _once("chat", factory, build)

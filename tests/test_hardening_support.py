"""Builders for the hardening tests: a tiny BERT folder, a text-classification CSV and a job on them, and
``run_job`` with a fault injected, as module-level functions a training process can import.

The jobs run through the real runner (``core.engine.runner.run_job``) with strategy "full", so they have
Trainer checkpoints to resume from; each takes a second or two after the first one warmed the imports.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import threading
from pathlib import Path

import torch

from core.config import DataConfig, JobConfig, TrainConfig
from core.engine.events import read_events
from core.engine.runner import run_job
from core.runs import FINAL_STATUSES, RunDir
from tests.test_classify_support import WORDS, minilm_folder, text_rows


def tiny_bert(folder: Path, hidden: int = 32, max_positions: int = 128) -> Path:
    """A 2-layer BERT (random weights, seeded) with the packaged MiniLM's tokenizer."""
    from transformers import BertConfig, BertModel

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=max_positions)
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (minilm_folder() / name).is_file():
            shutil.copy(minilm_folder() / name, folder / name)
    return folder


def text_csv(path: Path, rows: int = 60, seed: int = 1, words_per_row: int = 0) -> Path:
    """A 3-class CSV of short texts (longer ones when ``words_per_row`` is set)."""
    data = text_rows(rows, seed)
    names = list(WORDS)
    lines = ["text,label"]
    for i, (text, label) in enumerate(zip(data["text"], data["label"])):
        if words_per_row:
            text = " ".join([text] * (words_per_row // max(1, len(text.split())) + 1))
        lines.append(f"{text} {i},{names[label]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def job(model: Path, data: Path, name: str = "hardening", strategy: str = "full", **train) -> JobConfig:
    """A text-classification job on the tiny model; fast settings unless overridden."""
    settings = dict(epochs=2.0, batch_size=8, learning_rate=1e-2, max_length=32, threads=1, eval_every=6,
                    save_every=6, seed=0)
    settings.update(train)
    return JobConfig(task="text-classification", model=str(model), strategy=strategy, name=name,
                     data=DataConfig(path=str(data)), train=TrainConfig(**settings))


class StopAt:
    """A sink that sets the job's stop event when an event matches: a Stop press at an exact moment."""

    def __init__(self, stop: threading.Event, match) -> None:
        self.stop = stop
        self.match = match
        self.events: list[dict] = []

    def log(self, event: dict) -> None:
        self.events.append(event)
        if self.match(event):
            self.stop.set()

    def close(self) -> None:
        pass


def assert_consistent(run: RunDir) -> dict:
    """A run that ended is consistent: final status on disk, equal to the last status event, every
    metrics line readable; returns the status."""
    status = json.loads(run.status_file.read_text(encoding="utf-8"))
    assert status["status"] in FINAL_STATUSES, status
    assert run.read_status()["status"] == status["status"]
    lines = run.metrics.read_text(encoding="utf-8").splitlines()
    assert lines and all(json.loads(line) for line in lines)
    last = [e for e in read_events(run.metrics) if e["type"] == "status"][-1]
    assert (last["status"], last["message"]) == (status["status"], status["message"])
    assert status["message"]
    return status


ALLOCATOR_MESSAGE = ("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: you "
                     "tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)")


def run_job_with_faults(config, home, cap_mb: int = 400, **kwargs):
    """``run_job`` with a fault chosen by the run's name, for a training process (the fault stays in it):
    "alloc" raises the CPU allocator's out-of-memory error inside the training step, "crash" a ValueError
    there, "capped" lets the process's address space grow only ``cap_mb`` beyond what it holds (a real
    allocation failure), "slow-eval" makes the final evaluation take a minute; other runs train normally."""
    name = kwargs["run"].name
    if "-capped" in name:
        _cap_address_space(cap_mb)
    if "-slow-eval" in name:
        import time

        from core.engine.classify.base import BaseRecipe

        real_evaluate = BaseRecipe.evaluate

        def slow_evaluate(self):
            for _ in range(600):  # Python code that never looks at the stop event, like a long comparison
                time.sleep(0.1)
            return real_evaluate(self)

        BaseRecipe.evaluate = slow_evaluate
    if "-alloc" in name or "-crash" in name:
        from core.engine.classify.finetune import ClassifierTrainer

        def step(self, model, inputs, *args, **kw):
            if "-alloc" in self.args.output_dir:
                raise RuntimeError(ALLOCATOR_MESSAGE)
            raise ValueError("boom inside the training step")

        ClassifierTrainer.training_step = step
    return run_job(config, home, **kwargs)


def _cap_address_space(cap_mb: int) -> None:
    import resource

    import core.engine.classify.baselines  # noqa: F401  what a job imports, imported before the cap
    import core.engine.classify.finetune  # noqa: F401
    import core.engine.classify.head_only  # noqa: F401
    import peft  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + cap_mb * 1024**2, hard))


def rss_mb() -> float:
    import psutil

    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss / 1e6


def live_models() -> int:
    """Transformer models still alive in this process (a freed job leaves none)."""
    from transformers import PreTrainedModel

    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, PreTrainedModel))


def test_text_csv_has_three_balanced_classes(tmp_path):
    lines = text_csv(tmp_path / "d.csv", rows=30).read_text().splitlines()
    assert lines[0] == "text,label" and len(lines) == 31
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == set(WORDS)

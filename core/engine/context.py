"""What a task trainer gets: the filled-in job, its data, its model, its run folder and a way to report."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import JobConfig
from ..home import Home
from .events import Reporter
from ..runs import RunDir


@dataclass
class TrainContext:
    """Everything one training job needs.

    Attributes:
        config: the job with every preset filled in (what config.yaml holds).
        home: the studio home (model cache).
        run: the run folder; weights go to ``run.model``, checkpoints to ``run.checkpoints``.
        data: a ``core.data.PreparedData`` (train/validation ``datasets.Dataset`` + labels + summary).
        model: a ``core.models.ResolvedModel`` (where the weights are and what kind they are).
        reporter: emits events (metrics.jsonl + job manager).
        stop: set when the user presses Stop; trainers stop within one step and keep what was trained.
        resume_from: a checkpoint folder to resume from, or None.
        hardware: a ``core.hardware.Hardware`` (device, precision, threads, memory).
        tokenizer: the model's tokenizer when the runner already loaded it (to measure the data), else None.
    """

    config: JobConfig
    home: Home
    run: RunDir
    data: Any
    model: Any
    reporter: Reporter
    stop: threading.Event = field(default_factory=threading.Event)
    resume_from: Path | None = None
    hardware: Any = None
    tokenizer: Any = None


@dataclass
class TrainOutcome:
    """What a task trainer returns once training ended (finished or stopped)."""

    stopped: bool = False
    global_step: int = 0
    train_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

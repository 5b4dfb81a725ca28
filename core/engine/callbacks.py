"""The bridge from the transformers ``Trainer`` to our reporter: log points, throughput, ETA and Stop."""
from __future__ import annotations

import threading
import time

from transformers import TrainerCallback

from .events import Reporter


class ItemCounter:
    """Counts what went through the model (useful tokens or samples); a collator adds to it per batch."""

    def __init__(self) -> None:
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.total += int(n)


class ReporterCallback(TrainerCallback):
    """Sends every Trainer log as a ``train`` or ``eval`` event and stops within one step on request.

    Args:
        reporter: where events go.
        stop: set by the job manager (Stop button) or by a time budget; checked after every step.
        counter: useful tokens or samples seen so far, for the throughput figure.
        unit: ``tokens`` or ``samples``; names the throughput field (``tokens_per_s``/``samples_per_s``).
        max_seconds: stop (keeping what was trained) once training has run this long.
    """

    def __init__(self, reporter: Reporter, stop: threading.Event, counter: ItemCounter | None = None,
                 unit: str = "samples", max_seconds: float | None = None) -> None:
        self.reporter = reporter
        self.stop = stop
        self.counter = counter
        self.unit = unit
        self.max_seconds = max_seconds
        self.stopped_early = False
        self._t0 = None
        self._step0 = 0
        self._count0 = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.time()
        self._step0 = state.global_step
        self._count0 = self.counter.total if self.counter else 0
        self.reporter.emit("train", step=state.global_step, total_steps=state.max_steps, epoch=state.epoch or 0.0)

    def on_step_end(self, args, state, control, **kwargs):
        over_time = self.max_seconds is not None and time.time() - self._t0 > self.max_seconds
        if self.stop.is_set() or over_time:
            self.stopped_early = True
            control.should_training_stop = True
            control.should_save = True  # keep what was trained so far as a checkpoint
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if any(k.startswith("eval_") for k in logs):
            metrics = {k.removeprefix("eval_"): v for k, v in logs.items()
                       if k.startswith("eval_") and k not in ("eval_runtime", "eval_samples_per_second",
                                                               "eval_steps_per_second")}
            # Keep the Trainer's name for the loss so the curve and metrics.jsonl say eval_loss.
            if "loss" in metrics:
                metrics["eval_loss"] = metrics.pop("loss")
            self.reporter.emit("eval", step=state.global_step, epoch=state.epoch, **metrics)
            return
        if "loss" not in logs:
            return  # the closing train_runtime summary; the runner reports the end itself
        elapsed = time.time() - (self._t0 or time.time())
        done = state.global_step - self._step0
        left = state.max_steps - state.global_step
        eta = elapsed / done * left if done > 0 else None
        rate = {}
        if self.counter is not None and elapsed > 0:
            rate[f"{self.unit}_per_s"] = (self.counter.total - self._count0) / elapsed
        self.reporter.emit(
            "train", step=state.global_step, total_steps=state.max_steps, epoch=state.epoch,
            loss=logs.get("loss"), learning_rate=logs.get("learning_rate"), grad_norm=logs.get("grad_norm"),
            train_elapsed_s=elapsed, eta_s=eta, **rate,
        )

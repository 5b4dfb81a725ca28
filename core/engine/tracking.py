"""Experiment tracking with the tools teams already use.

Every run writes TensorBoard event files into ``<run>/tensorboard`` from the same events that feed
``metrics.jsonl`` and the page (a sink on the run's reporter), so chat runs, classifier fine-tunes and head-only
heads all appear in ``tensorboard --logdir ~/.finetune-studio/runs``, each run with its settings and final scores
in TensorBoard's HParams tab, where runs compare side by side.

``train.report_to`` (mlflow, trackio, wandb) is handed to the transformers Trainer, whose own integrations log
there; ``trainer_report_to`` turns the setting into the Trainer's argument.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..config import JobConfig
from ..runs import RunDir

logger = logging.getLogger("studio")

FOLDER = "tensorboard"
# Event fields that are bookkeeping, not curves.
_NOT_CURVES = {"type", "time", "elapsed_s", "step", "total_steps", "epoch", "train_elapsed_s", "eta_s", "current",
               "total"}


class TensorBoardSink:
    """An event sink (``core.engine.events.EventSink``) writing the run's curves as TensorBoard scalars.

    ``train`` events become ``train/loss``, ``train/learning_rate``, ``train/grad_norm`` and the throughput;
    ``eval`` events become ``eval/<metric>``; when the run completes, its settings and final tuned scores are
    written as hyper-parameters. Nothing is written until the first curve point.

    Args:
        run: the run folder; files go to ``run/tensorboard``.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.folder = run.path / FOLDER
        self._writer = None
        self._broken = False

    def log(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "train" and event.get("loss") is not None:
            self._scalars("train", event)
        elif kind == "eval":
            self._scalars("eval", event)
        elif kind == "status" and event.get("status") == "training":
            self._note_trackers()
        elif kind == "status" and event.get("status") == "completed":
            self._hparams()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _scalars(self, prefix: str, event: dict) -> None:
        writer = self._open()
        if writer is None:
            return
        step = int(event.get("step") or 0)
        for key, value in event.items():
            if key not in _NOT_CURVES and isinstance(value, (int, float)) and not isinstance(value, bool):
                name = key.removeprefix("eval_") if prefix == "eval" else key  # eval/loss, not eval/eval_loss
                writer.add_scalar(f"{prefix}/{name}", float(value), step, walltime=event.get("time"))
        if prefix == "train" and event.get("epoch") is not None:
            writer.add_scalar("train/epoch", float(event["epoch"]), step, walltime=event.get("time"))
        writer.flush()

    def _note_trackers(self) -> None:
        """Head-only heads train without the Trainer, so train.report_to cannot reach them: say so in train.log."""
        from ..strategies import get_strategy

        try:
            config = JobConfig.load(self.run.config)
        except Exception:  # the note is a courtesy; never fail a run over it
            return
        others = [r for r in config.train.report_to if r != "tensorboard"]
        if others and get_strategy(config.strategy).on_features:
            logger.warning("train.report_to (%s) reaches runs trained with the transformers Trainer (LoRA, QLoRA, "
                           "full); this head-only run's curves are in TensorBoard (%s/%s) and metrics.jsonl.",
                           ", ".join(others), self.run.name, FOLDER)

    def _hparams(self) -> None:
        writer = self._open()
        if writer is None:
            return
        try:
            config = JobConfig.load(self.run.config)
            report = self.run.read_eval() or {}
        except Exception:  # a run folder edited by hand must not fail the run at its very end
            return
        metrics = {f"final/{k}": float(v) for k, v in (report.get("tuned") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        metrics.update({f"base/{k}": float(v) for k, v in (report.get("base") or {}).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
        if metrics:
            writer.add_hparams(hyperparameters(config), metrics, run_name=".")
        writer.add_text("config", "```yaml\n" + config.to_yaml() + "\n```")
        writer.flush()

    def _open(self):
        if self._writer is None and not self._broken:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._broken = True
                logger.warning("TensorBoard files are not written: the tensorboard package is not installed "
                               "(pip install tensorboard).")
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(self.folder), flush_secs=10)
        return self._writer


def hyperparameters(config: JobConfig) -> dict[str, Any]:
    """The job's settings as flat TensorBoard hyper-parameters (numbers, text and booleans only)."""
    flat: dict[str, Any] = {"task": config.task, "model": str(config.model), "strategy": config.strategy,
                            "data": Path(str(config.data.path)).name}
    for key, value in config.train.__dict__.items():
        if isinstance(value, (bool, int, float, str)):
            flat[f"train.{key}"] = value
        elif isinstance(value, (list, tuple)):
            flat[f"train.{key}"] = ",".join(map(str, value))
    return flat


def sinks_for(run: RunDir) -> list:
    """The tracking sinks every run gets (the runner adds them to the reporter)."""
    return [TensorBoardSink(run)]


def trainer_report_to(config: JobConfig) -> list[str] | str:
    """``TrainingArguments.report_to`` for this job: the trackers in ``train.report_to`` other than TensorBoard
    (the studio writes those files itself, from every recipe), or ``"none"``.

    The config's own check (``JobConfig.problems``) has already refused trackers that are not installed.
    """
    wanted = [r for r in (config.train.report_to or []) if r != "tensorboard"]
    return wanted or "none"


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve in a run's TensorBoard files: tag -> [(step, value), ...] (for tests and checks).

    Args:
        folder: the run's ``tensorboard`` folder (or any folder of event files).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, list[tuple[int, float]]] = {}
    for events in sorted({p.parent for p in Path(folder).rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            curves.setdefault(tag, []).extend((s.step, s.value) for s in accumulator.Scalars(tag))
    return curves

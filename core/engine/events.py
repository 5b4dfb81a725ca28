"""Progress out of the training loop: events go to an injected sink and to the run's ``metrics.jsonl``.

An event is a flat JSON-able dict with a ``type``:

- ``phase``: a slow step begins (``phase`` in loading, converting, caching, training, evaluating, exporting,
  saving; ``message``; optional ``current``/``total`` for a sub-progress such as feature caching).
- ``train``: a training log point (``step``, ``total_steps``, ``epoch``, ``loss``, ``learning_rate``,
  ``grad_norm``, ``tokens_per_s`` or ``samples_per_s``, ``elapsed_s``, ``eta_s``).
- ``eval``: an evaluation point (``step``, ``epoch``, ``eval_loss`` and/or ``accuracy``, ``macro_f1``...).
- ``log``: a line for the log tail (``message``, ``level``).
- ``status``: the job's status changed (``status``, ``message``).

Every event also carries ``time`` (unix seconds) and ``elapsed_s`` since the reporter started.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger("studio")


class EventSink(Protocol):
    def log(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class NullSink:
    def log(self, event: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class ListSink:
    """Keeps events in memory (tests, the job manager)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def log(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def close(self) -> None:
        pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("type") == kind]


class Reporter:
    """Stamps events, appends them to ``metrics.jsonl`` (flushed at once) and forwards them to sinks.

    Args:
        metrics_path: the run's ``metrics.jsonl``, or None to keep nothing on disk.
        sinks: where events go as well (the job manager, a CLI progress bar, a test list).
        enabled: False on non-main ranks of a distributed run, so only one process writes.
    """

    def __init__(self, metrics_path: Path | None = None, sinks: list[EventSink] | None = None,
                 enabled: bool = True, elapsed_offset: float = 0.0) -> None:
        self.metrics_path = metrics_path
        self.sinks = list(sinks or [])
        self.enabled = enabled
        self.started = time.time() - elapsed_offset
        self._lock = threading.Lock()
        self._logged_phase: str | None = None  # a phase's progress updates repeat its message: logged once

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        event = {"type": type, "time": round(now, 3), "elapsed_s": round(now - self.started, 3)}
        event.update({k: _plain(v) for k, v in fields.items() if v is not None})
        if not self.enabled:
            return event
        with self._lock:
            if self.metrics_path is not None:
                with open(self.metrics_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(event) + "\n")
            for sink in self.sinks:
                sink.log(event)
        return event

    def phase(self, phase: str, message: str, current: int | None = None, total: int | None = None) -> None:
        self.emit("phase", phase=phase, message=message, current=current, total=total)
        if current is None or message != self._logged_phase:
            logger.info(message)
        self._logged_phase = message

    def line(self, message: str, level: str = "info") -> None:
        self.emit("log", message=message, level=level)
        logger.log(logging.WARNING if level == "warning" else logging.INFO, message)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def read_events(metrics_path: Path) -> list[dict[str, Any]]:
    """All events of a run; a line cut short by a crash is skipped, the rest are kept."""
    events = []
    if not metrics_path.is_file():
        return events
    for raw in metrics_path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return events


def _plain(value: Any) -> Any:
    """Numbers from torch/numpy become plain Python numbers, so json.dumps never fails mid-run."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            return str(value)
    if isinstance(value, float):
        return round(value, 6)
    return value

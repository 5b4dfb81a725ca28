"""One folder per run: config, metrics, log, status, checkpoints, weights, evaluation and model card."""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUSES = ("queued", "preparing", "training", "evaluating", "completed", "stopped", "failed", "interrupted")
FINAL_STATUSES = ("completed", "stopped", "failed", "interrupted")


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run folder. ``model/`` holds what the run produced in the ecosystem's formats."""

    path: Path

    @classmethod
    def create(cls, runs_root: Path, name: str | None, task: str) -> "RunDir":
        """A new, uniquely named run folder: ``YYYYmmdd-HHMMSS-<name or task>``."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", (name or task)).strip("-")[:40] or task
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            path = runs_root / (f"{stamp}-{slug}" if i == 0 else f"{stamp}-{slug}-{i}")
            try:
                path.mkdir(parents=True, exist_ok=False)
                return cls(path)
            except FileExistsError:
                continue
        raise RuntimeError(f"could not create a run folder under {runs_root}")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @property
    def card(self) -> Path:
        return self.model / "README.md"

    @property
    def data_summary(self) -> Path:
        return self.path / "data_summary.json"

    def read_status(self) -> dict[str, Any]:
        """The run's status; a run whose process died while running reads as ``interrupted``."""
        try:
            status = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"status": "interrupted", "message": "The run has no readable status file."}
        if status.get("status") not in FINAL_STATUSES and not _alive(status.get("pid")):
            status = {**status, "status": "interrupted",
                      "message": "The process running this job ended without finishing it "
                                 "(killed or crashed). Resume it from its last checkpoint."}
        return status

    def write_status(self, status: str, message: str = "", **extra: Any) -> None:
        """Write status.json atomically, so a reader never sees half a file."""
        payload = {"status": status, "message": message, "pid": os.getpid(), "updated": time.time(), **extra}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        os.replace(tmp, self.status_file)

    def read_eval(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.eval.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def last_checkpoint(self) -> Path | None:
        """The newest complete ``checkpoint-N`` folder the Trainer wrote, if any.

        The Trainer writes ``trainer_state.json`` last, so a folder without it was cut short by a kill.
        """
        if not self.checkpoints.is_dir():
            return None
        found = [p for p in self.checkpoints.glob("checkpoint-*")
                 if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
        return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(runs_root: Path) -> list[RunDir]:
    """Runs under the home, newest first."""
    if not runs_root.is_dir():
        return []
    runs = [RunDir(p) for p in runs_root.iterdir() if (p / "config.yaml").is_file()]
    return sorted(runs, key=lambda r: r.name, reverse=True)

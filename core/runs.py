"""One folder per run: config, metrics, log, status, checkpoints, weights, evaluation and model card.

It also says whether a run can be resumed: a checkpoint is offered only once it is checked (its files complete,
its safetensors readable, its step the folder's, its optimiser state present); a damaged newest checkpoint
falls back to the one before it, with the reason.
"""
from __future__ import annotations

import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("queued", "preparing", "training", "evaluating", "completed", "stopped", "failed", "interrupted")
FINAL_STATUSES = ("completed", "stopped", "failed", "interrupted")
CHECKPOINT_PREFIX = "checkpoint-"
# What the Trainer needs besides the weights to go on exactly where it was (rng_state.pth, or one per rank).
TRAINER_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


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

    @property
    def replay(self) -> Path:
        """A chat run's general replay: the base model's answers trained beside the rows, one conversation a line."""
        return self.path / "replay.jsonl"

    @property
    def memory_estimate(self) -> Path:
        """The memory estimate the runner checked before training (``core.memory.MemoryEstimate``)."""
        return self.path / "memory.json"

    def read_status(self) -> dict[str, Any]:
        """The run's status; a run whose process died while running reads as ``interrupted``."""
        try:
            status = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"status": "interrupted", "message": "The run has no readable status file."}
        if status.get("status") not in FINAL_STATUSES and not _alive(status.get("pid")):
            message = ("It was waiting in the queue of a studio that is no longer running; starting the studio "
                       "again runs it." if status.get("status") == "queued" else
                       "The process running this job ended without finishing it (killed or crashed). Resume it "
                       "from its last checkpoint.")
            status = {**status, "status": "interrupted", "message": message}
        return status

    def write_status(self, status: str, message: str = "", **extra: Any) -> None:
        """Write status.json atomically, so a reader never sees half a file.

        The temporary name carries the writer's pid: the server and a training process may both write it.
        """
        payload = {"status": status, "message": message, "pid": os.getpid(), "updated": time.time(), **extra}
        tmp = self.status_file.with_name(f".status.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        os.replace(tmp, self.status_file)

    def read_eval(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.eval.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def checkpoint_folders(self) -> list[Path]:
        """Every ``checkpoint-N`` folder, newest (highest N) first, checked or not."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.iterdir()
                 if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and p.name[len(CHECKPOINT_PREFIX):].isdigit()]
        return sorted(found, key=checkpoint_step, reverse=True)

    def resume_point(self) -> "ResumePoint":
        """The newest checkpoint that passes ``check_checkpoint``, and the newer ones that did not (why)."""
        damaged = []
        for folder in self.checkpoint_folders():
            problem = check_checkpoint(folder)
            if problem is None:
                return ResumePoint(folder, tuple(damaged))
            damaged.append((folder, problem))
        return ResumePoint(None, tuple(damaged))

    def last_checkpoint(self) -> Path | None:
        """The newest complete, readable ``checkpoint-N`` folder (see ``check_checkpoint``), if any."""
        return self.resume_point().checkpoint


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run goes on from: ``checkpoint`` (None: none usable) and the damaged newer ones."""

    checkpoint: Path | None
    damaged: tuple[tuple[Path, str], ...] = ()

    @property
    def step(self) -> int | None:
        return checkpoint_step(self.checkpoint) if self.checkpoint is not None else None

    def describe(self) -> str:
        """One or two sentences for the log: which checkpoint, and which ones were passed over and why."""
        skipped = " ".join(f"{folder.name} is damaged ({problem}), so it is skipped."
                           for folder, problem in self.damaged)
        if self.checkpoint is None:
            return (skipped + " No usable checkpoint is left" if skipped else "No checkpoint was saved before it "
                    "ended") + ": starting from the beginning."
        return (skipped + " " if skipped else "") + f"Resuming from {self.checkpoint.name}."


def checkpoint_step(folder: Path) -> int:
    """N of a ``checkpoint-N`` folder."""
    return int(Path(folder).name[len(CHECKPOINT_PREFIX):])


def check_checkpoint(folder: Path) -> str | None:
    """What is wrong with a Trainer checkpoint folder, in a few words; None when it can be resumed from.

    Checked: trainer_state.json readable and its global_step the folder's N; the optimiser, scheduler and RNG
    state present and complete (torch writes zip archives, whose directory comes last, so a file cut short by a
    kill reads as no archive); every safetensors file's header readable and covering the whole file.

    Args:
        folder: a ``checkpoint-N`` folder.
    """
    folder = Path(folder)
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except OSError:
        return "trainer_state.json is missing"
    except json.JSONDecodeError:
        return "trainer_state.json is cut short"
    if state.get("global_step") != checkpoint_step(folder):
        return f"its trainer_state.json says step {state.get('global_step')}, not {checkpoint_step(folder)}"
    for name in TRAINER_FILES[1:]:
        if not zipfile.is_zipfile(folder / name):
            return f"{name} is {'missing' if not (folder / name).exists() else 'cut short'}"
    rng = sorted(folder.glob("rng_state*.pth"))
    if not rng:
        return "its random-number state (rng_state.pth) is missing"
    if not all(zipfile.is_zipfile(path) for path in rng):
        return "its random-number state is cut short"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights and not list(folder.glob("*.bin")):
        return "it holds no weights"
    for path in weights:
        problem = _safetensors_problem(path)
        if problem:
            return f"{path.name} {problem}"
    return None


def _safetensors_problem(path: Path) -> str | None:
    from safetensors import safe_open  # reads the header only; it checks that the data covers the whole file

    try:
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except Exception as exc:  # SafetensorError and OSError alike mean the same: not usable
        return f"is unreadable ({str(exc).splitlines()[0][:120]})"
    return None


@dataclass(frozen=True)
class ResumeCheck:
    """Whether a run can be resumed, and what Resume would do, in words for the page.

    Attributes:
        run: the run folder.
        status: the run's status (``read_status``).
        can_resume: Resume may be offered.
        reason: why not, or what Resume will do ("Goes on from step 80 of 120.").
        checkpoint: the checked checkpoint it goes on from; None when it starts over.
        step: the checkpoint's step; total_steps: the run's planned steps when known.
        damaged: newer checkpoints passed over, with what is wrong with each.
    """

    run: RunDir
    status: str
    can_resume: bool
    reason: str
    checkpoint: Path | None = None
    step: int | None = None
    total_steps: int | None = None
    damaged: tuple[tuple[Path, str], ...] = field(default=())


def resume_check(run: RunDir, keeps_checkpoints: bool = True) -> ResumeCheck:
    """Can ``run`` be resumed? A completed or running run cannot; a stopped, failed or interrupted one goes on
    from its newest sound checkpoint, or starts over with its own settings when it has none.

    Args:
        run: the run folder.
        keeps_checkpoints: False for strategies that train in seconds on cached features and save no
            checkpoints (head-only): Resume then simply trains it again in the same folder.
    """
    status = run.read_status()
    state = status.get("status", "interrupted")
    if not run.config.is_file():
        return ResumeCheck(run, state, False, "This folder is not a run (it has no config.yaml).")
    if state == "completed":
        return ResumeCheck(run, state, False, "This run finished: there is nothing to resume. To train it "
                                              "again, start a new run with its settings.")
    if state not in FINAL_STATUSES:
        return ResumeCheck(run, state, False, "This run is still going (queued or training); wait for it, "
                                              "or stop it first.")
    point = run.resume_point()
    skipped = " ".join(f"{folder.name} is damaged ({problem}) and is skipped." for folder, problem in point.damaged)
    if point.checkpoint is None:
        if state == "failed" and not point.damaged:
            return ResumeCheck(run, state, False, "It failed before saving a checkpoint: fix what its message "
                                                  "says, then start it again.")
        if not keeps_checkpoints:
            why = "This strategy keeps no checkpoints (it trains in seconds on cached features)"
        elif point.damaged:
            why = "Every checkpoint it saved is damaged (" + "; ".join(
                f"{folder.name}: {problem}" for folder, problem in point.damaged) + ")"
        else:
            why = "It ended before its first checkpoint"
        return ResumeCheck(run, state, True, f"{why}: Resume trains it again from the start, with the same "
                                             "settings, in the same folder.", damaged=point.damaged)
    total = _planned_steps(point.checkpoint)
    of = f" of {total}" if total else ""
    return ResumeCheck(run, state, True, (skipped + " " if skipped else "") + f"Resume goes on from step "
                       f"{point.step}{of} ({point.checkpoint.name}).", point.checkpoint, point.step, total,
                       point.damaged)


def _planned_steps(checkpoint: Path) -> int | None:
    try:
        steps = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("max_steps")
    except (OSError, json.JSONDecodeError):
        return None
    return steps if isinstance(steps, int) and steps > 0 else None


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

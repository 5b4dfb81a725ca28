"""The job manager: one training job at a time in a background thread, the rest queued in order.

It is the only state shared between browser sessions. The UI polls ``snapshot`` on a timer, so closing or
reloading the page never touches a job; Stop sets an event the trainer checks after every step.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import JobConfig
from .engine.events import read_events
from .runs import FINAL_STATUSES, RunDir
from .engine.runner import JobFailed, create_run, run_job
from .home import Home

logger = logging.getLogger("studio")
MAX_EVENTS_IN_MEMORY = 20_000


@dataclass
class JobSnapshot:
    """What the UI shows of a job at one moment (a copy: safe to read without the lock)."""

    job_id: str
    owner: str | None
    status: str
    message: str
    queue_position: int | None
    run_dir: Path | None
    config: JobConfig
    events: list[dict[str, Any]]
    progress: dict[str, Any]
    error: str | None
    submitted: float
    finished: float | None

    @property
    def active(self) -> bool:
        return self.status not in FINAL_STATUSES


@dataclass
class _Job:
    job_id: str
    owner: str | None
    config: JobConfig
    run: RunDir
    resume: bool
    stop: threading.Event = field(default_factory=threading.Event)
    status: str = "queued"
    message: str = "Waiting for the job before it to finish."
    events: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    finished: float | None = None


class _JobSink:
    """Receives a job's events from the trainer thread and folds them into the job's live state."""

    def __init__(self, manager: "JobManager", job: _Job) -> None:
        self.manager = manager
        self.job = job

    def log(self, event: dict[str, Any]) -> None:
        with self.manager._lock:
            job = self.job
            if len(job.events) < MAX_EVENTS_IN_MEMORY:
                job.events.append(event)
            kind = event.get("type")
            if kind == "status":
                job.status = event["status"]
                job.message = event.get("message", "")
            elif kind == "phase":
                job.progress.update(phase=event.get("phase"), phase_message=event.get("message"),
                                    current=event.get("current"), total=event.get("total"))
                job.message = event.get("message", job.message)
            elif kind == "train":
                job.progress.update({k: event[k] for k in ("step", "total_steps", "epoch", "eta_s", "loss")
                                     if k in event})

    def close(self) -> None:
        pass


class JobManager:
    """Runs submitted jobs one at a time, in order, on a background thread.

    Args:
        home: the studio home; runs are created under ``home.runs``.
        run_fn: the function that runs a job (``core.engine.runner.run_job``; tests may pass another).
    """

    def __init__(self, home: Home, run_fn=run_job) -> None:
        self.home = home
        self._run_fn = run_fn
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._current: str | None = None
        self._ids = itertools.count(1)
        self._wake = threading.Condition(self._lock)
        self._worker = threading.Thread(target=self._work, name="studio-jobs", daemon=True)
        self._worker.start()

    # --- the UI's verbs ---------------------------------------------------------------------------
    def submit(self, config: JobConfig, owner: str | None = None, resume_run: Path | None = None) -> str:
        """Queue a job and return its id. Invalid settings raise ``ConfigError`` at once, listing all problems.

        Args:
            config: the job (ignored when resuming: the run's own config.yaml is used).
            owner: the browser session or visitor that submitted it.
            resume_run: a run folder to continue from its last checkpoint.
        """
        if resume_run is not None:
            run = RunDir(Path(resume_run))
            config = JobConfig.load(run.config)
            config.validate()
        else:
            config.validate()
            run = create_run(config, self.home)
        with self._lock:
            job_id = f"job-{next(self._ids)}-{run.name}"
            self._jobs[job_id] = _Job(job_id, owner, config, run, resume_run is not None)
            self._queue.append(job_id)
            self._wake.notify_all()
        return job_id

    def stop(self, job_id: str) -> None:
        """Stop a running job within one step (keeping what was trained), or take a queued one off the queue."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINAL_STATUSES:
                return
            job.stop.set()
            if job_id in self._queue:
                self._queue.remove(job_id)
                job.status, job.message, job.finished = "stopped", "Taken off the queue before it started.", time.time()
                job.run.write_status("stopped", job.message)
            else:
                job.message = "Stopping after the current step..."

    def snapshot(self, job_id: str) -> JobSnapshot | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job else None

    def jobs(self, owner: str | None = None) -> list[JobSnapshot]:
        with self._lock:
            return [self._snapshot(j) for j in self._jobs.values() if owner is None or j.owner == owner]

    def latest(self, owner: str | None) -> JobSnapshot | None:
        """The owner's most recent job: what a reloaded page re-attaches to."""
        mine = self.jobs(owner)
        return max(mine, key=lambda s: s.submitted) if mine else None

    def busy(self) -> bool:
        with self._lock:
            return self._current is not None or bool(self._queue)

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot | None:
        """Block until the job ends (tests and the CLI)."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            snap = self.snapshot(job_id)
            # the final status event arrives before the worker records the error and the end time
            if snap is None or (not snap.active and snap.finished is not None):
                return snap
            if deadline is not None and time.time() > deadline:
                return snap
            time.sleep(0.05)

    # --- internals --------------------------------------------------------------------------------
    def _snapshot(self, job: _Job) -> JobSnapshot:
        position = self._queue.index(job.job_id) + 1 if job.job_id in self._queue else None
        return JobSnapshot(job.job_id, job.owner, job.status, job.message, position, job.run.path, job.config,
                           list(job.events), dict(job.progress), job.error, job.submitted, job.finished)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._wake.wait()
                job_id = self._queue.popleft()
                self._current = job_id
                job = self._jobs[job_id]
                job.status, job.message = "preparing", "Starting."
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._current = None

    def _run(self, job: _Job) -> None:
        sink = _JobSink(self, job)
        if job.resume:
            with self._lock:  # show the curve so far when a run is resumed
                job.events = read_events(job.run.metrics)[-MAX_EVENTS_IN_MEMORY // 2:]
        try:
            self._run_fn(None if job.resume else job.config, self.home, sinks=[sink], stop=job.stop,
                         run=job.run, resume=job.resume)
        except JobFailed as exc:
            with self._lock:
                job.status, job.error, job.message = "failed", str(exc), str(exc)
        except Exception as exc:  # never let one job take the worker (and so every later job) down
            logger.exception("job %s crashed", job.job_id)
            with self._lock:
                job.status, job.error = "failed", f"The job failed: {exc}"
                job.message = job.error
        finally:
            final = job.run.read_status()
            with self._lock:
                if job.status not in FINAL_STATUSES:
                    job.status = final.get("status", "failed")
                    job.message = final.get("message", job.message)
                job.finished = time.time()

"""The job manager: one training job at a time, the rest queued in order, the queue kept on disk.

It is the only state shared between browser sessions. Each job trains in a process of its own (``core.worker``),
spawned, never forked, and watched by this manager's thread (``core.supervisor``), which hands its events to
the job's live state: a kill, an out-of-memory kill or a crash of training ends that job with a plain message,
never the studio. One process is kept warm (the training stack already imported), so Start costs no imports.
The queue, the jobs' owners and the running job's process are kept in the studio home (``core.queue_store``):
after a restart queued jobs are still queued and run, and a run that was training shows as interrupted, with
what Resume would do (``core.runs.resume_check``).

The UI polls ``snapshot`` on a timer, so closing or reloading the page never touches a job; Stop reaches the
trainer within one step.

A ``run_fn`` that cannot be sent to another process (a closure or an object holding locks: test stand-ins
driven from the test) runs on this manager's thread instead, as it did before the training processes.
"""
from __future__ import annotations

import inspect
import itertools
import logging
import os
import pickle
import re
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from .config import ConfigError, JobConfig
from .engine.events import Reporter, read_events
from .engine.runner import JobFailed, create_run, run_job, settle_task
from .home import Home
from .queue_store import JobRecord, JobStore
from .runs import FINAL_STATUSES, ResumeCheck, RunDir, list_runs, resume_check
from .supervisor import ChildExit, WorkerPool, WorkerSettings, explain_exit, process_start_time, supervise
from .worker import JobRequest

logger = logging.getLogger("studio")
MAX_EVENTS_IN_MEMORY = 20_000
ORPHAN_WAIT_S = 120.0  # a training process left by a killed server stops within a step; then it is ended


@dataclass
class JobSnapshot:
    """What the UI shows of a job at one moment (a copy: safe to read without the lock).

    ``resume`` is set once the job has ended: whether Resume may be offered for its run and what it would do
    (``ResumeCheck.can_resume``, ``.reason``). ``worker_pid`` is its training process while it runs.
    """

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
    resume: ResumeCheck | None = None
    worker_pid: int | None = None

    @property
    def active(self) -> bool:
        return self.status not in FINAL_STATUSES


@dataclass(frozen=True)
class ManagerHealth:
    """What the page can ask to tell "the studio is up" and "what is my job doing" apart.

    Attributes:
        now: the server's clock (unix seconds).
        up_since: when this manager started (a restart shows as a later time).
        worker: the training process: "ready" (waiting, stack imported), "starting" (importing), "training",
            "none", or "in-process" (stand-in trainers run on a thread).
        worker_pid: that process's id.
        running: the running job's id; queued: how many wait.
    """

    now: float
    up_since: float
    worker: str
    worker_pid: int | None
    running: str | None
    queued: int


@dataclass
class _Job:
    job_id: str
    owner: str | None
    run: RunDir
    resume: bool
    config_: JobConfig | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    status: str = "queued"
    message: str = "Waiting for the job before it to finish."
    events: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    finished: float | None = None
    worker_pid: int | None = None
    worker_started: float | None = None
    events_loaded: bool = True
    resume_check: ResumeCheck | None = None

    @property
    def config(self) -> JobConfig:
        """The job's settings (read from its run's config.yaml for a job restored after a restart)."""
        if self.config_ is None:
            try:
                self.config_ = JobConfig.load(self.run.config)
            except Exception:  # a run folder removed since (public-mode expiry): keep the job listable
                self.config_ = JobConfig(task="chat", name=self.run.name)
        return self.config_

    def record(self, state: str) -> JobRecord:
        return JobRecord(self.job_id, self.owner, str(self.run.path), self.resume, self.submitted, state,
                         self.worker_pid, self.worker_started, self.finished)


class _JobSink:
    """Receives a job's events (from its training process, or its thread) into the job's live state."""

    def __init__(self, manager: "JobManager", job: _Job) -> None:
        self.manager = manager
        self.job = job

    def log(self, event: dict[str, Any]) -> None:
        with self.manager._lock:
            _fold(self.job, event)

    def close(self) -> None:
        pass


def _fold(job: _Job, event: dict[str, Any]) -> None:
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
        job.progress.update({k: event[k] for k in ("step", "total_steps", "epoch", "eta_s", "loss") if k in event})


class JobManager:
    """Runs submitted jobs one at a time, in order, each in a training process of its own.

    Args:
        home: the studio home; runs are created under ``home.runs``, the queue kept in ``home/jobs``.
        run_fn: the function that runs a job (``core.engine.runner.run_job``); tests may pass another. It runs in
            a training process when it can be sent there (a module-level function, or a ``functools.partial``
            of one), else on this manager's thread.
        in_process: force the thread (True) or the process (False); None decides as above.
        settings: how training processes run (warm import, grace periods after Stop, the memory limit).
        restore: pick up the queue and the jobs kept in the home by an earlier server (default True).
    """

    def __init__(self, home: Home, run_fn: Callable[..., Any] = run_job, in_process: bool | None = None,
                 settings: WorkerSettings | None = None, restore: bool = True) -> None:
        self.home = home
        self._run_fn = run_fn
        # Windows cannot hand a socket to a child this way (pass_fds): there jobs train on this thread, as before.
        self._in_process = (not _sendable(run_fn) or os.name == "nt") if in_process is None else in_process
        self._settings = settings or WorkerSettings(preload=run_fn is run_job)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._current: str | None = None
        self._orphans: list[_Job] = []
        self._closing = False
        self._store = JobStore(home)
        if not self._in_process:  # real training processes: one studio per home (stand-in trainers share)
            self._store.claim()
        self._started = time.time()
        first_id = self._restore() if restore else 1
        self._ids = itertools.count(first_id)
        self._pool = None if self._in_process else WorkerPool(home, self._settings.preload)
        if self._pool is not None:
            self._pool.warm()  # imports the training stack while the visitor picks data
        self._worker = threading.Thread(target=self._work, name="studio-jobs", daemon=True)
        self._worker.start()

    # --- the UI's verbs ---------------------------------------------------------------------------
    def submit(self, config: JobConfig | None, owner: str | None = None, resume_run: Path | None = None) -> str:
        """Queue a job and return its id. Invalid settings raise ``ConfigError`` at once, listing all problems.

        Args:
            config: the job (ignored when resuming: the run's own config.yaml is used).
            owner: the browser session or visitor that submitted it.
            resume_run: a run folder to continue from its last checkpoint (see ``resume``).
        """
        if resume_run is not None:
            return self.resume(resume_run, owner)
        config = settle_task(config.validate(), self.home)
        run = create_run(config, self.home)
        return self._enqueue(_Job("", owner, run, False, config_=config))

    def resume(self, run_dir: Path, owner: str | None = None) -> str:
        """Queue the run to go on from its newest sound checkpoint; return the job's id.

        Raises ``ConfigError`` with the reason when it cannot be resumed: it finished, it is queued or running,
        or it failed before any checkpoint (``resume_check`` says which).

        Args:
            run_dir: the run folder.
            owner: who resumes it (the page's owner id).
        """
        run = RunDir(Path(run_dir))
        check = self.resume_check(run.path)
        if not check.can_resume:
            raise ConfigError([check.reason])
        config = JobConfig.load(run.config)
        config.validate()
        return self._enqueue(_Job("", owner, run, True, config_=config))

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
                self._save()
            else:
                job.message = "Stopping after the current step..."

    def snapshot(self, job_id: str) -> JobSnapshot | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job else None

    def jobs(self, owner: str | None = None) -> list[JobSnapshot]:
        """Every job (of ``owner``), oldest first. Cheap: jobs restored after a restart come without their
        curve and ``resume`` is filled only once ``snapshot`` was asked for the job."""
        with self._lock:
            return [self._snapshot(j, full=False) for j in self._jobs.values() if owner is None or j.owner == owner]

    def latest(self, owner: str | None) -> JobSnapshot | None:
        """The owner's most recent job: what a reloaded (or restarted) page re-attaches to."""
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner]
            return self._snapshot(max(mine, key=lambda j: j.submitted)) if mine else None

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

    def resume_check(self, run_dir: Path) -> ResumeCheck:
        """Whether a run can be resumed and what Resume would do (for a row of the history)."""
        run = RunDir(Path(run_dir))
        with self._lock:
            busy = self._busy(run)
        if busy:
            return ResumeCheck(run, "queued", False, "It is already queued or training.")
        return self._resume_check(run)

    def resumable_runs(self, owner: str | None = None) -> list[ResumeCheck]:
        """Runs that ended without finishing (stopped, failed, interrupted), newest first, each with whether
        Resume may be offered and why (not). ``owner``: only the runs of that visitor's jobs."""
        with self._lock:
            active = {j.run.path for j in self._jobs.values() if j.status not in FINAL_STATUSES}
            theirs = {j.run.path for j in self._jobs.values() if j.owner == owner}
        checks = []
        for run in list_runs(self.home.runs):
            if run.path in active or (owner is not None and run.path not in theirs):
                continue
            if run.read_status().get("status") in ("stopped", "failed", "interrupted"):
                checks.append(self._resume_check(run))
        return checks

    def health(self) -> ManagerHealth:
        """Whether a training process is ready or busy, the running job and the queue's length."""
        with self._lock:
            current = self._jobs.get(self._current) if self._current else None
            queued = len(self._queue)
        if self._pool is None:
            worker, pid = "in-process", None
        elif current is not None and current.worker_pid:
            worker, pid = "training", current.worker_pid
        else:
            worker, pid = self._pool.state()
        return ManagerHealth(time.time(), self._started, worker, pid, current.job_id if current else None, queued)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until the warm training process has imported the training stack (True), or ``timeout``.
        Jobs on this manager's thread need no process: True at once."""
        deadline = time.time() + timeout
        while self._pool is not None and time.time() < deadline:
            if self._pool.state()[0] == "ready":
                return True
            time.sleep(0.2)
        return self._pool is None

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking jobs, stop the running one (it keeps a checkpoint), end the warm process."""
        with self._lock:
            self._closing = True
            current = self._jobs.get(self._current) if self._current else None
            if current is not None:
                current.stop.set()
            self._wake.notify_all()
        self._worker.join(timeout)
        if self._pool is not None:
            self._pool.close()
        self._store.release()

    def __enter__(self) -> "JobManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> str:
        with self._lock:
            if job.resume:  # checked again under the lock: a double click queues it once
                if self._busy(job.run):
                    raise ConfigError([f"{job.run.name} is already queued or training."])
                job.run.write_status("queued", "Waiting to resume.")
            job.job_id = f"job-{next(self._ids)}-{job.run.name}"
            self._jobs[job.job_id] = job
            self._queue.append(job.job_id)
            self._save()
            self._wake.notify_all()
        return job.job_id

    def _busy(self, run: RunDir) -> bool:
        """Whether a job of this manager is queued or running on ``run`` (lock held)."""
        return any(j.run.path == run.path and j.status not in FINAL_STATUSES for j in self._jobs.values())

    def _resume_check(self, run: RunDir) -> ResumeCheck:
        from .strategies import get_strategy

        try:
            on_features = get_strategy(JobConfig.load(run.config).strategy).on_features
        except Exception:  # no readable config: resume_check says so
            on_features = False
        return resume_check(run, keeps_checkpoints=not on_features)

    def _snapshot(self, job: _Job, full: bool = True) -> JobSnapshot:
        """A copy of the job (lock held); ``full`` also reads what a restored job left on disk."""
        if full and not job.events_loaded:  # a job from before a restart: its curve from the run's file
            job.events = read_events(job.run.metrics)[-MAX_EVENTS_IN_MEMORY:]
            job.progress = _progress_of(job.events)
            job.events_loaded = True
        if full and job.finished is not None and job.resume_check is None:
            job.resume_check = self._resume_check(job.run)
        position = self._queue.index(job.job_id) + 1 if job.job_id in self._queue else None
        return JobSnapshot(job.job_id, job.owner, job.status, job.message, position, job.run.path, job.config,
                           list(job.events), dict(job.progress), job.error, job.submitted, job.finished,
                           job.resume_check, job.worker_pid if job.status not in FINAL_STATUSES else None)

    def _save(self) -> None:
        """Keep the jobs on disk (called with the lock held)."""
        records = []
        for job in self._jobs.values():
            state = "queued" if job.job_id in self._queue else (
                "running" if job.job_id == self._current else "ended")
            records.append(job.record(state))
        try:
            self._store.save(records)
        except OSError:  # a full disk must not stop the studio; the queue then lives in memory only
            logger.exception("could not write the job list")

    def _restore(self) -> int:
        """Take up what an earlier server left: its queue, its jobs, its interrupted run. Returns the next id."""
        highest = 0
        for record in self._store.load():
            run = RunDir(Path(record.run))
            if not run.path.is_dir():
                continue  # removed since (public-mode expiry)
            job = _Job(record.job_id, record.owner, run, record.resume, submitted=record.submitted,
                       finished=record.finished, worker_pid=record.worker_pid, worker_started=record.worker_started,
                       events_loaded=False)
            number = re.match(r"job-(\d+)-", record.job_id)
            highest = max(highest, int(number.group(1)) if number else 0)
            self._jobs[job.job_id] = job
            if record.state == "queued":
                job.message = "Waiting in the queue (kept across a restart of the studio)."
                run.write_status("queued", job.message)  # this server's pid: the run is not an orphan
                self._queue.append(job.job_id)
            elif record.state == "running":
                job.status, job.message = "interrupted", "The studio restarted while this job was training."
                job.finished = job.finished or time.time()
                self._orphans.append(job)
            else:
                status = run.read_status()
                job.status, job.message = status.get("status", "interrupted"), status.get("message", "")
                job.error = job.message if job.status == "failed" else None
                job.finished = job.finished or status.get("updated") or record.submitted
        return highest + 1

    def _work(self) -> None:
        for job in list(self._orphans):
            self._settle_orphan(job)
        with self._lock:
            self._orphans.clear()
            self._save()
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                job_id = self._queue.popleft()
                self._current = job_id
                job = self._jobs[job_id]
                job.status, job.message = "preparing", "Starting."
                self._save()
            try:
                if self._in_process:
                    self._run_here(job)
                else:
                    self._run_in_process(job)
            except Exception:  # never let one job take the manager (and so every later job) down
                logger.exception("job %s could not be run", job.job_id)
                with self._lock:
                    job.status, job.error = "failed", "The studio could not run this job; its log has the details."
                    job.message, job.finished = job.error, job.finished or time.time()
            finally:
                with self._lock:
                    self._current = None
                    self._save()
                if self._pool is not None and not self._closing:
                    self._pool.warm()

    def _run_in_process(self, job: _Job) -> None:
        worker = self._pool.take()
        if self._queue:  # more jobs wait: the next process imports the stack while this one trains
            self._pool.warm()
        with self._lock:  # a resumed run shows its curve so far
            job.events = read_events(job.run.metrics)[-MAX_EVENTS_IN_MEMORY // 2:] if job.resume else []
            job.progress, job.events_loaded = _progress_of(job.events), True
            job.worker_pid, job.worker_started = worker.pid, process_start_time(worker.pid)
            self._save()
        request = JobRequest(self._run_fn, None if job.resume else job.config, str(self.home.root),
                             str(job.run.path), job.resume)
        out = supervise(worker, request, _JobSink(self, job).log, job.stop, self._settings)
        logger.info("job %s: training process %d ended (%s), peak memory %.0f MB", job.job_id, worker.pid,
                    out.returncode, (out.peak_rss or 0) / 1e6)
        self._conclude(job, out)

    def _conclude(self, job: _Job, out: ChildExit) -> None:
        """Take the job's end from what its process said; write it down when the process could not."""
        recorded = _recorded_status(job.run)
        if out.done is not None and not out.escalated and recorded.get("status") in FINAL_STATUSES:
            status, message = recorded["status"], recorded.get("message", "")
            error = out.done.error if out.done.failed else (message if status == "failed" else None)
        elif out.done is not None and out.done.failed and not out.escalated:
            status, message, error = "failed", out.done.error, out.done.error
            self._write_end(job, status, message)
        else:
            status, message = explain_exit(out, job.run, partial(_memory_advice, job.run),
                                           self.home.root / "logs" / "worker.log")
            error = message if status == "failed" else None
            self._write_end(job, status, message)
        check = self._resume_check(job.run)
        with self._lock:
            job.status, job.message, job.error = status, message, error
            job.finished, job.resume_check = time.time(), check

    def _write_end(self, job: _Job, status: str, message: str) -> None:
        """status.json and a last status event, as the runner would have written them."""
        with self._lock:
            elapsed = next((e["elapsed_s"] for e in reversed(job.events) if "elapsed_s" in e), 0.0)
        job.run.write_status(status, message)
        Reporter(job.run.metrics, [_JobSink(self, job)], elapsed_offset=elapsed).emit(
            "status", status=status, message=message)

    def _run_here(self, job: _Job) -> None:
        """The thread mode: run_fn in this process (stand-in trainers that the test drives)."""
        sink = _JobSink(self, job)
        if job.resume:
            with self._lock:  # show the curve so far when a run is resumed
                job.events = read_events(job.run.metrics)[-MAX_EVENTS_IN_MEMORY // 2:]
        try:
            self._run_fn(None if job.resume else job.config, self.home, sinks=[sink], stop=job.stop,
                         run=job.run, resume=job.resume)
        except (JobFailed, ConfigError) as exc:
            with self._lock:
                job.status, job.error, job.message = "failed", str(exc), str(exc)
        except Exception as exc:
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

    def _settle_orphan(self, job: _Job) -> None:
        """A job that was training when the server died: wait for its process (it stops within a step once
        it notices, keeping a checkpoint), then say what happened."""
        pid = job.worker_pid
        if pid and job.worker_started and process_start_time(pid) == job.worker_started:
            deadline = time.time() + ORPHAN_WAIT_S
            while time.time() < deadline and process_start_time(pid) == job.worker_started:
                time.sleep(0.2)
            if process_start_time(pid) == job.worker_started:
                logger.warning("the training process %d left by the previous server did not stop: SIGKILL", pid)
                os.kill(pid, signal.SIGKILL)
        recorded = _recorded_status(job.run)
        if recorded.get("status") in FINAL_STATUSES:
            status, message = recorded["status"], recorded.get("message", "")
        else:
            point = job.run.resume_point()
            resume = (f"Resume goes on from step {point.step} ({point.checkpoint.name})." if point.checkpoint
                      else "No checkpoint had been saved yet: Resume starts it again.")
            status = "interrupted"
            message = f"The studio stopped while this run was {recorded.get('status') or 'going'}. {resume}"
            job.run.write_status(status, message)
            Reporter(job.run.metrics).emit("status", status=status, message=message)
        with self._lock:
            job.status, job.message = status, message
            job.error = message if status == "failed" else None
            job.resume_check = None


def _recorded_status(run: RunDir) -> dict[str, Any]:
    """status.json as written (``read_status`` would already call a dead process's run interrupted)."""
    import json

    try:
        return json.loads(run.status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _memory_advice(run: RunDir) -> str:
    from .memory import out_of_memory_advice

    try:
        train = JobConfig.load(run.config).train
    except Exception:
        return out_of_memory_advice(None, None)
    return out_of_memory_advice(train.batch_size, train.max_length)


def _progress_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    job = _Job("", None, RunDir(Path(".")), False)
    for event in events:
        if event.get("type") in ("train", "phase"):
            _fold(job, event)
    return job.progress


def _sendable(run_fn: Callable[..., Any]) -> bool:
    """Whether a training process can import ``run_fn`` by name: a module-level function (or a partial of one
    with picklable arguments). An object or a closure may carry state the caller drives from this process
    (test stand-ins with gates), so those run here."""
    target = run_fn.func if isinstance(run_fn, partial) else run_fn
    if not inspect.isfunction(target) or "<locals>" in target.__qualname__ or target.__module__ == "__main__":
        return False
    try:
        pickle.dumps(run_fn)
    except Exception:
        return False
    return True

"""The training process: ``python -m core.worker FD``, spawned by the studio server (``core.supervisor``).

It is started before there is a job, imports the training stack while the visitor picks data (about 5 s of
Start-to-first-loss otherwise), says it is ready, then runs exactly one job and exits, so every job starts in a
fresh process and gives all of its memory back. Over the connection (a socket pair, fd ``FD``) it receives
``Setup``, then a ``JobRequest`` and perhaps ``Stop``; it sends ``Ready``, every event of the job, then ``Done``.

How it ends a job:
- ``Stop`` (the user's Stop): the stop event, so training ends within one step and keeps a checkpoint; the
  final evaluation is interrupted (``core.engine.interrupt``).
- The server goes away (its end of the connection closes) or SIGTERM: the same, and the run is then marked
  ``interrupted`` with its checkpoint, to be resumed.
- Anything written to stdout or stderr while the job runs (library warnings, a native crash's stack from
  ``faulthandler``) goes to the run's train.log.

This module is also imported by the server, for the messages: it imports nothing heavy at its top.
"""
from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

# What a job needs besides the stack, imported while the process waits for its job.
PRELOAD = ("core.engine.runner", "core.engine.recipes", "core.engine.chat", "core.engine.classify",
           "core.engine.classify.baselines", "core.plan", "core.data", "core.models", "datasets", "peft",
           "sklearn.linear_model")


# --- messages -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setup:
    """Server -> process, first: the server's import path, and whether to import the training stack now."""

    sys_path: tuple[str, ...]
    preload: bool = True


@dataclass(frozen=True)
class Ready:
    """Process -> server: set up (and the stack imported, taking ``seconds``); waiting for its job."""

    pid: int
    seconds: float


@dataclass(frozen=True)
class JobRequest:
    """Server -> process: the one job to run, as ``run_fn(config, home, sinks=, stop=, run=, resume=)``.

    Attributes:
        run_fn: an importable function (``core.engine.runner.run_job``; tests send their own).
        config: the job (a ``JobConfig``), or None to take the run's config.yaml (resume).
        home: the studio home folder.
        run: the run folder (made by the server).
        resume: go on from the run's last checkpoint.
    """

    run_fn: Callable[..., Any]
    config: Any
    home: str
    run: str
    resume: bool


@dataclass(frozen=True)
class Stop:
    """Server -> process: the user pressed Stop."""


@dataclass(frozen=True)
class Event:
    """Process -> server: one event of the job (what the Reporter appended to metrics.jsonl)."""

    event: dict


@dataclass(frozen=True)
class Done:
    """Process -> server, last: the job returned (``error`` set when it failed, in plain words)."""

    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


# --- the process ----------------------------------------------------------------------------------------
class ConnectionSink:
    """An event sink that sends each event to the server; once the server is gone it sends nothing more
    (the run's metrics.jsonl still gets every event)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.open = True
        self._lock = threading.Lock()

    def log(self, event: dict) -> None:
        self.send(Event(event))

    def send(self, message: object) -> None:
        with self._lock:
            if not self.open:
                return
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                self.open = False

    def close(self) -> None:
        pass  # the connection outlives the reporter: Done goes last


class _StopReason:
    """Why the job is being stopped; the first reason wins."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.reason: str | None = None

    def __call__(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop.set()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the training process (``python -m core.worker FD``)."""
    argv = sys.argv[1:] if argv is None else argv
    conn = Connection(int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the server's to handle
    faulthandler.enable()  # a native crash leaves the Python stack on stderr (train.log once a job runs)
    idle = threading.Event()
    idle.set()
    threading.Thread(target=_leave_if_orphaned, args=(os.getppid(), idle), daemon=True).start()
    try:
        setup = conn.recv()
    except (EOFError, OSError):
        return 0
    sys.path[:] = list(dict.fromkeys([*setup.sys_path, *sys.path]))
    started = time.perf_counter()
    if setup.preload:
        preload()
    try:
        conn.send(Ready(os.getpid(), time.perf_counter() - started))
        request = conn.recv()
    except (EOFError, OSError):
        return 0  # the studio closed (or went away) before it had a job for this process
    except Exception as exc:  # the job could not be unpickled (its function cannot be imported here)
        traceback.print_exc()
        ConnectionSink(conn).send(Done(f"The training process could not load the job: {exc}"))
        return 1
    finally:
        idle.clear()
    return run(conn, request)


def _leave_if_orphaned(parent: int, idle: threading.Event) -> None:
    """A process still waiting for its job ends when its server is gone (even in the middle of its imports)."""
    while idle.is_set():
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def preload() -> None:
    """Import the training stack and the engine, as a job would, before there is a job."""
    import importlib

    from . import stack

    stack.load()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part missing shows up, with its real message, when a job needs it
            logging.getLogger("studio").debug("preloading %s failed", name, exc_info=True)


def run(conn: Connection, request: JobRequest) -> int:
    """Run the one job, streaming its events; returns the process's exit code."""
    from .config import ConfigError
    from .engine.runner import JobFailed
    from .home import Home
    from .runs import RunDir

    run_dir = RunDir(Path(request.run))
    _output_to(run_dir.log)
    _quiet_libraries()
    stop = threading.Event()
    stop_for = _StopReason(stop)
    threading.Thread(target=_listen, args=(conn, stop_for), name="studio-worker-listen", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_for("terminated"))
    sink = ConnectionSink(conn)
    error = None
    try:
        request.run_fn(request.config, Home(Path(request.home)), sinks=[sink], stop=stop, run=run_dir,
                       resume=request.resume)
    except (JobFailed, ConfigError) as exc:
        error = str(exc)
    except BaseException as exc:  # the runner reports its own failures; this is a run_fn that did not
        traceback.print_exc()
        error = f"The job failed: {str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__}"
    if stop_for.reason in ("server", "terminated"):
        _mark_interrupted(run_dir, sink, stop_for.reason)
    sink.send(Done(error))
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


def _listen(conn: Connection, stop_for: _StopReason) -> None:
    """Receive Stop; the connection closing means the studio is gone: stop, keeping a checkpoint."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            stop_for("server")
            return
        if isinstance(message, Stop):
            stop_for("user")


INTERRUPTED_BY = {
    "server": "The studio stopped while this run was going",
    "terminated": "The training process was asked to end (SIGTERM) while this run was going",
}


def _mark_interrupted(run_dir, sink: ConnectionSink, reason: str) -> None:
    """A job stopped because the studio went away (or SIGTERM) was interrupted, not stopped by its user."""
    from .engine.events import Reporter

    status = run_dir.read_status()
    if status.get("status") != "stopped":
        return  # it finished, or failed, before the stop took effect: that is what happened
    point = run_dir.resume_point()
    kept = (f"it saved a checkpoint at step {point.step} first; Resume goes on from there." if point.checkpoint
            else "no checkpoint had been saved yet; Resume starts it again.")
    message = f"{INTERRUPTED_BY[reason]}: {kept}"
    run_dir.write_status("interrupted", message)
    Reporter(run_dir.metrics, [sink]).emit("status", status="interrupted", message=message)


def _output_to(path: Path) -> None:
    """Point this process's stdout and stderr (file descriptors 1 and 2) at the run's log, appending."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _quiet_libraries() -> None:
    """transformers logs through the runner's handler into train.log already: no second copy on stderr, and
    no progress bars (their carriage returns make a log unreadable)."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


if __name__ == "__main__":
    # Run the module under its own name, so the messages it sends are core.worker's classes, not __main__'s.
    from core import worker

    sys.exit(worker.main())

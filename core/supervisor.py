"""The server's side of a training process (``core.worker``): spawn it warm, hand it a job, stream its events,
stop it (escalating to SIGTERM, then SIGKILL), and say in plain words how it ended when it did not say so itself.

A process is spawned (``subprocess``: a fresh interpreter, nothing of the server's models, threads or locks in
it) before there is a job, in its own session so a Ctrl-C in the server's terminal reaches the server only; the
server then asks it to stop. How a process that died on its own is told apart:

- SIGKILL while the kernel counted an out-of-memory kill (``/proc/vmstat`` ``oom_kill``), or while it held most of
  the memory it may use: out of memory, with the settings to lower (``core.memory.out_of_memory_advice``);
- any other SIGKILL: killed from outside (a person, a process manager); the run is interrupted, to be resumed;
- SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT: a crash in native code; the Python stack is in train.log.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

from .home import Home
from .runs import RunDir
from .worker import Done, Event, JobRequest, Ready, Setup, Stop

logger = logging.getLogger("studio")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CRASH_SIGNALS = {"SIGSEGV": "a segmentation fault", "SIGBUS": "a bus error", "SIGILL": "an illegal instruction",
                 "SIGFPE": "an arithmetic fault", "SIGABRT": "an abort"}
OOM_SHARE = 0.8  # a SIGKILL while the process held this share of its memory limit reads as out of memory
LOW_AVAILABLE = 0.05  # or while the machine had less than this share of its memory available
WORKER_LOG_BYTES = 1_000_000


@dataclass(frozen=True)
class WorkerSettings:
    """How training processes are run.

    Attributes:
        preload: import the training stack in the warm process before its job (False for stand-in trainers).
        stop_grace_s: after Stop, how long the process may take to end by itself (a step, then saving) before
            it gets SIGTERM; three times the last step's duration when that is longer.
        term_grace_s: after SIGTERM, how long before SIGKILL.
        memory_limit_bytes: the memory the process may use (None: the machine's or its cgroup's limit); a
            SIGKILL near it reads as out of memory.
    """

    preload: bool = True
    stop_grace_s: float = 60.0
    term_grace_s: float = 10.0
    memory_limit_bytes: int | None = None


class WorkerProcess:
    """One spawned training process, set up and (maybe still) importing the stack; it runs one job.

    Args:
        home: the studio home; the process's output before its job goes to ``logs/worker.log``.
        preload: import the training stack before the job comes.
    """

    def __init__(self, home: Home, preload: bool = True) -> None:
        ours, theirs = socket.socketpair()
        log_path = home.root / "logs" / "worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if log_path.is_file() and log_path.stat().st_size > WORKER_LOG_BYTES:  # keep one older part, no more
            os.replace(log_path, log_path.with_suffix(".log.1"))
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "core.worker", str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=env, start_new_session=True)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.spawned = time.time()
        self.ready_after: float | None = None
        self.conn.send(Setup(tuple(sys.path), preload))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_ready(self) -> bool:
        """Whether it said Ready (without waiting)."""
        try:
            while self.ready_after is None and self.conn.poll(0):
                message = self.conn.recv()
                if isinstance(message, Ready):
                    self.ready_after = message.seconds
        except (EOFError, OSError):
            return False
        return self.ready_after is not None

    def close(self, timeout: float = 5.0) -> None:
        """End it: closing the connection makes an idle process exit; then SIGTERM, then SIGKILL."""
        self.conn.close()
        for ending in (None, self.proc.terminate, self.proc.kill):
            if ending is not None and self.alive():
                ending()
            try:
                self.proc.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue


class WorkerPool:
    """Keeps one training process warm (spawned when the studio starts and after each job).

    Args:
        home: the studio home.
        preload: import the training stack in the warm process.
    """

    def __init__(self, home: Home, preload: bool = True) -> None:
        self.home = home
        self.preload = preload
        self._next: WorkerProcess | None = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Make sure a process is waiting for the next job."""
        with self._lock:
            if self._next is None or not self._next.alive():
                self._next = WorkerProcess(self.home, self.preload)

    def take(self) -> WorkerProcess:
        """The warm process, for a job (a new one if there is none); the pool holds none until ``warm``."""
        with self._lock:
            worker = self._next if self._next is not None and self._next.alive() else None
            self._next = None
        return worker or WorkerProcess(self.home, self.preload)

    def state(self) -> tuple[str, int | None]:
        """("ready" | "starting" | "none", pid) of the warm process. Only the pool reads an idle process's
        connection (under its lock), so this never races the job that takes it."""
        with self._lock:
            worker = self._next
            if worker is None or not worker.alive():
                return "none", None
            return ("ready" if worker.check_ready() else "starting"), worker.pid

    def close(self) -> None:
        with self._lock:
            worker, self._next = self._next, None
        if worker is not None:
            worker.close()


@dataclass
class ChildExit:
    """How a training process ended.

    Attributes:
        done: what it said last (None: it died without saying).
        returncode: its exit status (negative: the signal that ended it).
        stop_requested: Stop was pressed; escalated: "terminated" or "killed" when the studio had to end it.
        grace_s: how long it was given after Stop.
        last_rss, peak_rss: its resident memory at the last look and its high-water mark (bytes).
        memory_limit: what it may use (bytes); available_share: the machine's available memory at the last look.
        oom_kills: out-of-memory kills the kernel counted while it ran.
        last_step: the last training step it reported; received: how many events it sent.
    """

    done: Done | None = None
    returncode: int | None = None
    stop_requested: bool = False
    escalated: str | None = None
    grace_s: float = 0.0
    last_rss: int | None = None
    peak_rss: int | None = None
    memory_limit: int | None = None
    available_share: float | None = None
    oom_kills: int = 0
    last_step: int | None = None
    received: int = 0


class _StepClock:
    """Seconds per training step, from the events (to size the wait after Stop)."""

    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None
        self.seconds_per_step: float | None = None
        self.step: int | None = None

    def see(self, event: dict) -> None:
        if event.get("type") != "train" or not isinstance(event.get("step"), int):
            return
        now, step = time.time(), event["step"]
        if self.last is not None and step > self.last[1]:
            self.seconds_per_step = (now - self.last[0]) / (step - self.last[1])
        self.last, self.step = (now, step), step


def supervise(worker: WorkerProcess, request: JobRequest, on_event: Callable[[dict], None],
              stop: threading.Event, settings: WorkerSettings) -> ChildExit:
    """Run ``request`` in ``worker`` until the process ends; events go to ``on_event`` as they come.

    Args:
        worker: a process from ``WorkerPool.take`` (it may still be importing: the job waits in its pipe).
        request: the job.
        on_event: called with every event, in order, on this thread.
        stop: set to stop the job; the process gets Stop, then SIGTERM, then SIGKILL if it does not end.
        settings: the grace periods and the memory limit.
    """
    out = ChildExit(memory_limit=settings.memory_limit_bytes or memory_limit_bytes())
    clock = _StepClock()
    stopper = _Stopper(worker, settings)
    oom_before = oom_kill_count()
    connected = _send(worker.conn, request)
    next_look = 0.0
    while True:
        if connected:
            connected = _pump(worker.conn, out, clock, on_event)
        now = time.monotonic()
        if now >= next_look:
            _look(worker.pid, out)
            next_look = now + 0.5
        if worker.proc.poll() is not None:
            if connected:  # what it sent just before it ended
                _pump(worker.conn, out, clock, on_event, wait=0.0)
            break
        if stop.is_set():
            stopper.tick(out, clock, now)
        if not connected:
            time.sleep(0.1)
    out.returncode = worker.proc.wait()
    worker.conn.close()
    out.oom_kills = max(0, oom_kill_count() - oom_before)
    out.last_step = clock.step
    return out


class _Stopper:
    """After Stop: the Stop message, SIGTERM once the grace is over, SIGKILL after ``term_grace_s`` more."""

    def __init__(self, worker: WorkerProcess, settings: WorkerSettings) -> None:
        self.worker, self.settings = worker, settings
        self.sent: float | None = None
        self.terminated: float | None = None

    def tick(self, out: ChildExit, clock: _StepClock, now: float) -> None:
        if self.sent is None:
            out.stop_requested = True
            out.grace_s = max(self.settings.stop_grace_s, 3 * (clock.seconds_per_step or 0.0))
            _send(self.worker.conn, Stop())
            self.sent = now
        elif self.terminated is None and now - self.sent > out.grace_s:
            logger.warning("training process %d did not stop within %.0f s: SIGTERM", self.worker.pid, out.grace_s)
            self.worker.proc.terminate()
            out.escalated, self.terminated = "terminated", now
        elif out.escalated == "terminated" and now - self.terminated > self.settings.term_grace_s:
            logger.warning("training process %d did not end after SIGTERM: SIGKILL", self.worker.pid)
            self.worker.proc.kill()
            out.escalated = "killed"


def _send(conn: Connection, message: object) -> bool:
    try:
        conn.send(message)
        return True
    except (OSError, ValueError):
        return False


def _pump(conn: Connection, out: ChildExit, clock: _StepClock, on_event, wait: float = 0.1) -> bool:
    """Hand on what the process sent (waiting up to ``wait`` for the first message); False once it hung up."""
    try:
        ready = conn.poll(wait)
        while ready:
            message = conn.recv()
            if isinstance(message, Event):
                out.received += 1
                clock.see(message.event)
                on_event(message.event)
            elif isinstance(message, Done):
                out.done = message
            elif isinstance(message, Ready):
                pass  # it finished importing; the job was already waiting for it
            ready = conn.poll(0)
    except (EOFError, OSError):
        return False
    return True


def _look(pid: int, out: ChildExit) -> None:
    """Note the process's memory (and the machine's), for telling an out-of-memory kill from another."""
    status = _proc_status(pid)
    if "VmRSS" in status:
        out.last_rss = status["VmRSS"]
        out.peak_rss = max(out.peak_rss or 0, status.get("VmHWM", 0), status["VmRSS"])
    meminfo = _meminfo()
    if meminfo.get("MemTotal") and "MemAvailable" in meminfo:
        out.available_share = meminfo["MemAvailable"] / meminfo["MemTotal"]


def likely_out_of_memory(out: ChildExit) -> tuple[bool, bool]:
    """(out of memory?, sure?): sure when the kernel counted an OOM kill while the process ran; likely when it
    was killed while holding most of its memory limit or while the machine had almost none left."""
    if out.oom_kills > 0:
        return True, True
    near_limit = bool(out.memory_limit and out.last_rss and out.last_rss >= OOM_SHARE * out.memory_limit)
    starved = out.available_share is not None and out.available_share < LOW_AVAILABLE
    return near_limit or starved, False


def explain_exit(out: ChildExit, run: RunDir, advice: Callable[[], str],
                 worker_log: Path | None = None) -> tuple[str, str]:
    """The status and the plain message for a process that ended without reporting how (or had to be ended).

    Args:
        out: how it ended (``supervise``).
        run: its run (for the checkpoint Resume would go on from).
        advice: the out-of-memory advice for the job's settings (called only when needed).
        worker_log: where a process writes before it has a job (``<home>/logs/worker.log``).
    """
    at = f" at step {out.last_step}" if out.last_step else ""
    point = run.resume_point()
    resume = (f"Resume goes on from step {point.step} ({point.checkpoint.name})." if point.checkpoint is not None
              else "No checkpoint had been saved yet: Resume starts it again.")
    if out.stop_requested and out.escalated:
        return "stopped", (f"Stopped: the training process had not ended {out.grace_s:.0f} s after Stop, so the "
                           f"studio ended it{at}. {resume}")
    code = out.returncode
    name = _signal_name(-code) if code is not None and code < 0 else None
    if name == "SIGKILL":
        oom, sure = likely_out_of_memory(out)
        if oom:
            used = f" (it held {_gib(out.last_rss)} of {_gib(out.memory_limit)})" if out.last_rss and \
                out.memory_limit else ""
            how = "The system ran out of memory and ended the training process" if sure else \
                "The training process was killed while the machine was almost out of memory"
            retry = advice().removeprefix("The job ran out of memory. ")  # said already, in other words
            return "failed", f"{how}{at}{used}. {retry} {resume}"
        return "interrupted", (f"The training process was killed (SIGKILL){at}, from outside the studio; the "
                               f"studio kept serving. {resume}")
    if name in CRASH_SIGNALS:
        return "failed", (f"The training process crashed{at} ({name}, {CRASH_SIGNALS[name]} in native code); the "
                          f"studio kept serving. The details are in train.log. {resume} If it crashes again, try "
                          "precision fp32 and compile off, or another model.")
    if name is not None:
        return "interrupted", f"The training process was ended by {name}{at}. {resume}"
    if out.received == 0 and worker_log is not None:  # it never got as far as the job's own log
        return "failed", (f"The training process ended before it could start the job (exit code {code}); what "
                          f"it said is in {worker_log}. Starting it again may work; if not, the studio's "
                          "installation is likely broken there.")
    return "failed", (f"The training process ended unexpectedly (exit code {code}){at}. The details are in "
                      f"train.log. {resume}")


# --- the machine --------------------------------------------------------------------------------------------
def memory_limit_bytes() -> int | None:
    """What this process tree may use: the machine's memory, or its cgroup's limit when lower."""
    total = _meminfo().get("MemTotal")
    limits = [total] if total else []
    for path in _cgroup_files("memory.max", "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            limits.append(int(text))
    return min(limits) if limits else None


def oom_kill_count() -> int:
    """Out-of-memory kills the kernel has counted (all of them; 0 where it does not say)."""
    for line in _read_lines(Path("/proc/vmstat")):
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def process_start_time(pid: int) -> float | None:
    """When a process started (seconds since boot), to tell a pid from a reused one; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _cgroup_files(*names: str) -> list[Path]:
    found = []
    for line in _read_lines(Path("/proc/self/cgroup")):
        parts = line.split(":", 2)
        if len(parts) != 3 or not (parts[1] in ("", "memory") or "memory" in parts[1].split(",")):
            continue
        base = Path("/sys/fs/cgroup") if parts[1] == "" else Path("/sys/fs/cgroup/memory")
        for name in names:
            found += [base / parts[2].lstrip("/") / name, base / name]
    return [p for p in found if p.is_file()]


def _proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in _read_lines(Path(f"/proc/{pid}/status")):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM") and value.strip().endswith("kB"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _meminfo() -> dict[str, int]:
    out = {}
    for line in _read_lines(Path("/proc/meminfo")):
        key, _, value = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _gib(n: int | None) -> str:
    return f"{(n or 0) / 2**30:.1f} GiB"

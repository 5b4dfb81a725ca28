"""The job manager's memory across restarts: every job's owner, run folder and place in the queue, on disk.

One small JSON file in the studio home (``jobs/jobs.json``), rewritten atomically at each change (submit, start,
end), so a server killed at any moment restarts with its queue in order, knows which run was training (and by
which process), and still knows whose job was whose. What a job did lives in its run folder, not here.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass, fields

from .home import Home

logger = logging.getLogger("studio")
FILE_VERSION = 1
KEEP_ENDED = 500  # ended jobs remembered (their owners and runs); queued and running ones are always kept
STATES = ("queued", "running", "ended")


@dataclass
class JobRecord:
    """One job as the store keeps it.

    Attributes:
        job_id: the manager's id for it.
        owner: the browser session or visitor that submitted it (None: the CLI or a test).
        run: the run folder.
        resume: it continues the run from its last checkpoint.
        submitted: when it was queued (unix seconds); the queue's order.
        state: queued, running or ended.
        worker_pid: the training process while running; worker_started its start time (to tell a reused pid).
        finished: when it ended.
    """

    job_id: str
    owner: str | None
    run: str
    resume: bool
    submitted: float
    state: str = "queued"
    worker_pid: int | None = None
    worker_started: float | None = None
    finished: float | None = None


class HomeInUse(RuntimeError):
    """Another studio already runs jobs from this home (two would run the same queue and end each other's jobs)."""


class JobStore:
    """Reads and writes ``<home>/jobs/jobs.json``.

    Args:
        home: the studio home.
    """

    def __init__(self, home: Home) -> None:
        self.path = home.root / "jobs" / "jobs.json"
        self._lock_fd: int | None = None

    def claim(self) -> None:
        """Take this home's queue for this process (until ``release`` or the process ends).

        Raises ``HomeInUse`` naming the studio that holds it."""
        lock = self.path.with_name("studio.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise HomeInUse(f"Another studio (process {holder}) is already running with the home "
                            f"{self.path.parents[1]}: stop it first, or start this one with another --home.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the file releases the lock
            self._lock_fd = None

    def load(self) -> list[JobRecord]:
        """The records, oldest first; an unreadable file is kept aside (jobs.json.bad) and reads as empty."""
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("The job list %s is unreadable (%s); starting with an empty queue.", self.path, exc)
            os.replace(self.path, self.path.with_suffix(".json.bad"))
            return []
        known = {f.name for f in fields(JobRecord)}
        records = []
        for item in payload.get("jobs", []):
            try:
                records.append(JobRecord(**{k: v for k, v in item.items() if k in known}))
            except TypeError:
                continue  # a record missing a field: nothing can be done with it
        return sorted((r for r in records if r.state in STATES), key=lambda r: r.submitted)

    def save(self, records: list[JobRecord]) -> None:
        """Write the records atomically; only the newest ``KEEP_ENDED`` ended ones are kept."""
        ended = [r for r in records if r.state == "ended"]
        dropped = {id(r) for r in sorted(ended, key=lambda r: r.submitted)[:-KEEP_ENDED]} if len(ended) > KEEP_ENDED \
            else set()
        payload = {"version": FILE_VERSION, "jobs": [asdict(r) for r in records if id(r) not in dropped]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

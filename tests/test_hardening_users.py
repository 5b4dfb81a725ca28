"""Several visitors at once, at the JobManager level: one trains while the other's job waits with its queue
position; each sees only their own uploads and jobs; the public policy keeps them out of each other's files."""
from __future__ import annotations

import threading
import time

from core.config import DataConfig, JobConfig
from core.engine.events import Reporter
from core.jobs import JobManager
from core.public import PublicPolicy
from core.uploads import save_upload, session_upload_dir
from tests.conftest_data import CASES


class GatedTrainer:
    """A stand-in for run_job that trains until its gate opens (so the test decides who waits)."""

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.started: list[str] = []

    def gate(self, name: str) -> threading.Event:
        return self.gates.setdefault(name, threading.Event())

    def __call__(self, config, home, sinks, stop, run, resume):
        reporter = Reporter(run.metrics, sinks)
        self.started.append(config.name)
        run.write_status("training", "Training.")
        reporter.emit("status", status="training", message="Training.")
        step = 0
        while not self.gate(config.name).wait(0.01) and not stop.is_set():
            step += 1
            reporter.emit("train", step=step, total_steps=1000, loss=1.0)
        final = "stopped" if stop.is_set() else "completed"
        run.write_status(final, "Done.")
        reporter.emit("status", status=final, message="Done.")
        return run


def _job(home, owner: str, name: str) -> JobConfig:
    data = save_upload(home, owner, CASES / "duplicates.csv")
    return JobConfig(task="text-classification", model="minilm-l6", strategy="head-only", name=name,
                     data=DataConfig(path=str(data)))


def _until(predicate, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_one_visitor_trains_while_the_other_waits_in_the_queue(home):
    trainer = GatedTrainer()
    manager = JobManager(home, run_fn=trainer)
    alice = manager.submit(_job(home, "alice", "alice-1"), owner="alice")
    assert _until(lambda: manager.snapshot(alice).status == "training")
    bob = manager.submit(_job(home, "bob", "bob-1"), owner="bob")
    carol = manager.submit(_job(home, "carol", "carol-1"), owner="carol")
    assert manager.snapshot(bob).queue_position == 1 and manager.snapshot(carol).queue_position == 2
    assert manager.snapshot(bob).status == "queued" and manager.snapshot(alice).queue_position is None
    assert _until(lambda: manager.snapshot(alice).progress.get("step", 0) > 3)

    trainer.gate("alice-1").set()
    assert manager.wait(alice, timeout=10).status == "completed"
    assert _until(lambda: manager.snapshot(bob).status == "training")
    assert manager.snapshot(carol).queue_position == 1  # moved up
    manager.stop(carol)  # a waiting visitor leaves
    trainer.gate("bob-1").set()
    assert manager.wait(bob, timeout=10).status == "completed"
    assert manager.snapshot(carol).status == "stopped" and trainer.started == ["alice-1", "bob-1"]


def test_each_visitor_sees_only_their_own_jobs_and_uploads(home):
    trainer = GatedTrainer()
    manager = JobManager(home, run_fn=trainer)
    for name in ("a1", "b1", "a2"):
        trainer.gate(name).set()
    ids = {name: manager.submit(_job(home, owner, name), owner=owner)
           for owner, name in (("alice", "a1"), ("bob", "b1"), ("alice", "a2"))}
    for job_id in ids.values():
        manager.wait(job_id, timeout=10)
    assert [s.config.name for s in manager.jobs(owner="alice")] == ["a1", "a2"]
    assert [s.config.name for s in manager.jobs(owner="bob")] == ["b1"]
    assert manager.latest("bob").job_id == ids["b1"]
    mine = session_upload_dir(home, "alice")
    theirs = session_upload_dir(home, "bob")
    assert mine != theirs and mine.parent == theirs.parent == home.uploads
    assert len(list(mine.rglob("*.csv"))) == 2 and len(list(theirs.rglob("*.csv"))) == 1
    assert all(s.config.data.path.startswith(str(mine)) for s in manager.jobs(owner="alice"))


def test_public_mode_keeps_visitors_to_their_own_files_and_turn(home):
    trainer = GatedTrainer()
    manager = JobManager(home, run_fn=trainer)
    policy = PublicPolicy(enabled=True, max_active_per_visitor=1, max_jobs_per_visitor=3, max_queue=2)
    alice_job = _job(home, "alice", "alice-1")
    assert policy.check_job(alice_job, "alice", manager) == []
    assert any("uploaded in this session" in p for p in policy.check_job(alice_job, "bob", manager))
    first = manager.submit(policy.clamp(alice_job), owner="alice")
    problems = policy.check_job(_job(home, "alice", "alice-2"), "alice", manager)
    assert any("already have 1 job" in p for p in problems)  # one at a time per visitor
    manager.submit(_job(home, "bob", "bob-1"), owner="bob")
    manager.submit(_job(home, "carol", "carol-1"), owner="carol")
    assert any("busy" in p for p in policy.check_job(_job(home, "dave", "dave-1"), "dave", manager))
    assert policy.check_job(_job(home, "dave", "dave-1"), None, manager)  # no session, no job
    for gate in ("alice-1", "bob-1", "carol-1"):
        trainer.gate(gate).set()
    manager.wait(first, timeout=10)
    for _ in range(2):
        trainer.gate("alice-n").set()
        manager.wait(manager.submit(_job(home, "alice", "alice-n"), owner="alice"), timeout=10)
    assert _until(lambda: not manager.busy())
    assert any("the most one visitor" in p for p in policy.check_job(_job(home, "alice", "x"), "alice", manager))

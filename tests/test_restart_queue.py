"""The queue on disk: a new job manager on the same home (a restarted studio) picks up the queue in order, the
owners, and the run that was training when the old one died, waiting for its training process if it still
runs. Stand-in trainers in real training processes; tests/test_restart_server.py does it with real servers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import partial

import pytest

from core import jobs as jobs_module
from core.config import ConfigError
from core.engine.events import read_events
from core.engine.runner import create_run
from core.jobs import JobManager
from core.queue_store import JobRecord, JobStore
from core.supervisor import WorkerSettings, process_start_time
from tests.test_jobs import FAST, _config, _until, fake_train
from tests.test_resume_checks import checkpoint


def test_queued_jobs_wait_across_a_restart_and_then_run(home):
    first = JobManager(home, run_fn=partial(fake_train, steps=10_000), settings=FAST)
    running = first.submit(_config("running"), owner="alice")
    queued = [first.submit(_config(name), owner=owner) for name, owner in (("b", "bob"), ("c", "carol"))]
    assert _until(lambda: first.snapshot(running).status == "training")
    first.close()  # the studio shuts down: the running job stops (keeping what it can), the queue stays
    assert first.snapshot(running).status == "stopped"

    from core.runs import RunDir

    waiting = RunDir(first.snapshot(queued[1]).run_dir)
    status = json.loads(waiting.status_file.read_text())
    waiting.status_file.write_text(json.dumps({**status, "pid": _dead_pid()}))  # written by the server that died
    assert waiting.read_status()["status"] == "interrupted"  # what the history would say while it is down
    second = JobManager(home, run_fn=partial(fake_train, steps=5), settings=FAST)
    try:
        assert waiting.read_status()["status"] in ("queued", "preparing", "training", "completed")  # queued again
        assert [second.snapshot(j).status for j in queued] in (["queued", "queued"], ["preparing", "queued"],
                                                               ["training", "queued"], ["completed", "queued"])
        for job_id in queued:
            assert second.wait(job_id, timeout=30).status == "completed"
        assert second.latest("carol").job_id == queued[1] and second.latest("alice").job_id == running
        assert second.snapshot(running).status == "stopped" and second.snapshot(running).events  # its curve, from disk
        fresh = second.submit(_config("d"))
        assert fresh not in (running, *queued) and second.wait(fresh, timeout=30).status == "completed"
    finally:
        second.close()


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def _left_running(home, pid, started, step=40):
    """A home as a killed server leaves it: a run training (by ``pid``), its record 'running'."""
    run = create_run(_config("was-training"), home)
    run.status_file.write_text(json.dumps({"status": "training", "message": "Training.", "pid": pid}))
    if step:
        checkpoint(run.path, step)
    JobStore(home).save([JobRecord("job-7-" + run.name, "alice", str(run.path), False, time.time(), "running",
                                   pid, started)])
    return run


def test_a_run_whose_process_died_with_the_server_reads_as_interrupted(home):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = _left_running(home, gone.pid, 1.0)
    with JobManager(home, run_fn=partial(fake_train, steps=5), settings=FAST) as manager:
        snap = manager.latest("alice")
        assert _until(lambda: manager.snapshot(snap.job_id).message.startswith("The studio stopped"))
        snap = manager.snapshot(snap.job_id)
        assert snap.status == "interrupted" and "Resume goes on from step 40 (checkpoint-40)" in snap.message
        assert snap.resume.can_resume and snap.resume.step == 40
        assert read_events(run.metrics)[-1]["status"] == "interrupted"
        (listed,) = manager.resumable_runs(owner="alice")  # what the page's history offers to resume
        assert listed.run.path == run.path and listed.can_resume and "goes on from step 40" in listed.reason
        assert manager.resumable_runs(owner="bob") == []
        assert manager.submit(_config("next")).startswith("job-8-")  # ids go on from the old server's
        resumed = manager.resume(run.path, owner="alice")
        with pytest.raises(ConfigError, match="already queued or training"):
            manager.resume(run.path, owner="alice")  # a double click queues it once
        assert manager.wait(resumed, timeout=30).status == "completed"


def test_a_training_process_left_running_is_waited_for_then_ended(home, monkeypatch):
    monkeypatch.setattr(jobs_module, "ORPHAN_WAIT_S", 1.0)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _left_running(home, orphan.pid, process_start_time(orphan.pid), step=0)
        with JobManager(home, run_fn=partial(fake_train, steps=5), settings=WorkerSettings(preload=False)) as manager:
            queued = manager.submit(_config("after"))
            assert manager.wait(queued, timeout=30).status == "completed"  # it waited, ended the orphan, went on
            assert orphan.wait(timeout=10) == -9
            snap = manager.latest("alice")
            assert snap.status == "interrupted" and "Resume starts it again" in snap.message
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_one_studio_at_a_time_runs_a_home(home):
    from core.queue_store import HomeInUse

    with JobManager(home, run_fn=partial(fake_train, steps=5), settings=FAST):
        with pytest.raises(HomeInUse, match=f"process {os.getpid()}"):
            JobManager(home, run_fn=partial(fake_train, steps=5), settings=FAST)
    with JobManager(home, run_fn=partial(fake_train, steps=5), settings=FAST):  # free again once it closed
        pass

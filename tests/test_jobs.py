"""The job manager's queue, stop and failure handling, with a stand-in for the trainer that behaves like one.

The stand-in (``fake_train``) is a module-level function, so the manager runs it in a real training process
(``core.worker``), exactly as it runs ``run_job``; ``fake_trainer`` (a closure) runs on the manager's thread,
for tests that drive the trainer from the test.
"""
import os
import signal
import threading
import time
from functools import partial

import pytest

from core.config import ConfigError, JobConfig
from core.engine.events import Reporter, read_events
from core.engine.runner import JobFailed
from core.jobs import JobManager
from core.supervisor import WorkerSettings

FAST = WorkerSettings(preload=False, stop_grace_s=2.0, term_grace_s=1.0)


def _config(name):
    config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only", name=name)
    config.data.path = "data.csv"
    return config


def fake_train(config, home, sinks, stop, run, resume, steps=50, fail_at=None, step_s=0.02, deaf=False):
    """Runs `steps` steps of `step_s` seconds, reporting like the real runner; honours stop (unless `deaf`);
    fails at step `fail_at`; a job named "bad" fails at step 3."""
    reporter = Reporter(run.metrics, sinks)
    run.write_status("training", "Training.")
    reporter.emit("status", status="training", message="Training.")
    fail_at = 3 if config is not None and config.name == "bad" else fail_at
    for step in range(1, steps + 1):
        if stop.is_set() and not deaf:
            run.write_status("stopped", f"Stopped at step {step - 1}.")
            reporter.emit("status", status="stopped", message=f"Stopped at step {step - 1}.")
            return run
        if step == fail_at:
            run.write_status("failed", "The job failed: boom")
            raise JobFailed("The job failed: boom")
        reporter.emit("train", step=step, total_steps=steps, loss=1.0 / step, pid=os.getpid())
        time.sleep(step_s)
    run.write_status("completed", "Finished.")
    reporter.emit("status", status="completed", message="Finished.")
    return run


def crash_train(config, home, sinks, stop, run, resume):
    run.write_status("training", "Training.")
    raise ValueError("something unexpected")


def fake_trainer(steps=50, fail_at=None):
    """The stand-in as a closure: it runs on the manager's thread (tests that need the trainer in-process)."""

    def run(config, home, sinks, stop, run, resume):
        return fake_train(config, home, sinks, stop, run, resume, steps=steps, fail_at=fail_at)

    return run


@pytest.fixture
def manager(home):
    managers = []

    def make(run_fn, **kwargs):
        managers.append(JobManager(home, run_fn=run_fn, settings=kwargs.pop("settings", FAST), **kwargs))
        return managers[-1]

    yield make
    for m in managers:
        m.close(timeout=10)


def test_jobs_queue_in_order_and_know_their_position(manager):
    jobs = manager(partial(fake_train, steps=30))
    first = jobs.submit(_config("a"), owner="alice")
    second = jobs.submit(_config("b"), owner="bob")
    third = jobs.submit(_config("c"), owner="bob")
    _until(lambda: jobs.snapshot(first).status == "training")
    assert jobs.snapshot(second).queue_position == 1
    assert jobs.snapshot(third).queue_position == 2
    for job in (first, second, third):
        assert jobs.wait(job, timeout=30).status == "completed"
    assert [s.config.name for s in jobs.jobs(owner="bob")] == ["b", "c"]
    assert jobs.latest("bob").config.name == "c"
    snap = jobs.snapshot(first)
    assert snap.progress["step"] == 30 and snap.run_dir.joinpath("metrics.jsonl").is_file()
    assert read_events(snap.run_dir / "metrics.jsonl") == snap.events  # the live curve is the file's
    pids = {e["pid"] for s in map(jobs.snapshot, (first, second, third)) for e in s.events if e["type"] == "train"}
    assert len(pids) == 3 and os.getpid() not in pids  # each job in a fresh process of its own
    assert snap.resume is not None and not snap.resume.can_resume and "nothing to resume" in snap.resume.reason


def test_stop_ends_a_running_job_and_dequeues_a_waiting_one(manager):
    jobs = manager(partial(fake_train, steps=500))
    running = jobs.submit(_config("a"))
    waiting = jobs.submit(_config("b"))
    _until(lambda: jobs.snapshot(running).progress.get("step", 0) >= 2)
    jobs.stop(waiting)
    jobs.stop(running)
    stopped = jobs.wait(running, timeout=10)
    assert stopped.status == "stopped" and stopped.message.startswith("Stopped at step")
    assert jobs.snapshot(waiting).status == "stopped"
    assert "queue" in jobs.snapshot(waiting).message


def test_a_training_process_deaf_to_stop_is_ended(manager):
    jobs = manager(partial(fake_train, steps=10_000, deaf=True))
    job = jobs.submit(_config("deaf"))
    _until(lambda: jobs.snapshot(job).progress.get("step", 0) >= 2)
    pid = jobs.snapshot(job).worker_pid
    started = time.time()
    jobs.stop(job)
    snap = jobs.wait(job, timeout=20)
    assert snap.status == "stopped" and "had not ended 2 s after Stop" in snap.message, snap.message
    assert time.time() - started < 8  # 2 s grace, SIGTERM (it does not listen), 1 s, SIGKILL
    assert not _alive(pid)


def test_a_failure_is_reported_and_the_next_job_runs(manager):
    jobs = manager(partial(fake_train, steps=5))
    bad_job = jobs.submit(_config("bad"))
    good_job = jobs.submit(_config("good"))
    bad = jobs.wait(bad_job, timeout=20)
    assert bad.status == "failed" and "boom" in bad.error
    assert jobs.wait(good_job, timeout=20).status == "completed"


def test_an_unexpected_crash_never_reads_as_completed(manager):
    jobs = manager(crash_train)
    job = jobs.wait(jobs.submit(_config("x")), timeout=20)
    assert job.status == "failed" and "something unexpected" in job.error
    assert "ValueError: something unexpected" in (job.run_dir / "train.log").read_text()  # the traceback


def test_a_killed_training_process_leaves_the_manager_serving(manager):
    jobs = manager(partial(fake_train, steps=10_000))
    job = jobs.submit(_config("victim"))
    after = jobs.submit(_config("after"))
    _until(lambda: jobs.snapshot(job).progress.get("step", 0) >= 2)
    os.kill(jobs.snapshot(job).worker_pid, signal.SIGKILL)
    snap = jobs.wait(job, timeout=20)
    assert snap.status == "interrupted" and "killed (SIGKILL)" in snap.message, snap.message
    assert "kept serving" in snap.message and snap.resume.can_resume  # starts again: no checkpoint
    assert read_events(snap.run_dir / "metrics.jsonl")[-1]["status"] == "interrupted"
    jobs.stop(after)


def test_the_thread_mode_runs_a_closure_in_this_process(manager):
    jobs = manager(fake_trainer(steps=5))
    snap = jobs.wait(jobs.submit(_config("here")), timeout=20)
    assert snap.status == "completed"
    assert {e["pid"] for e in snap.events if e["type"] == "train"} == {os.getpid()}
    assert jobs.health().worker == "in-process"


def test_health_says_whether_a_training_process_is_ready(manager):
    jobs = manager(partial(fake_train, steps=200))
    assert _until(lambda: jobs.health().worker == "ready")
    idle = jobs.health().worker_pid
    job = jobs.submit(_config("a"))
    _until(lambda: jobs.snapshot(job).status == "training")
    health = jobs.health()
    assert (health.worker, health.worker_pid, health.running) == ("training", idle, job)  # the warm one took it
    jobs.stop(job)
    jobs.wait(job, timeout=10)
    assert _until(lambda: jobs.health().worker == "ready" and jobs.health().worker_pid != idle)


def test_invalid_settings_are_refused_at_submit(manager):
    jobs = manager(partial(fake_train))
    config = _config("x")
    config.train.batch_size = -4
    with pytest.raises(ConfigError, match="batch_size"):
        jobs.submit(config)
    assert jobs.jobs() == []


def test_a_config_naming_no_task_is_queued_for_its_datas(manager, tmp_path):
    """As `studio train` does: the run folder and the job's settings carry the task the data is for."""
    from core.config import DataConfig, JobConfig

    jobs = manager(partial(fake_train))
    table = tmp_path / "tickets.csv"
    table.write_text("text,label\n" + "".join(f"ticket number {i} about billing,{'ab'[i % 2]}\n" for i in range(20)))
    job = jobs.submit(JobConfig(data=DataConfig(path=str(table))))
    queued = jobs.snapshot(job)
    assert queued.run_dir.name.endswith("-text-classification")
    assert "task: text-classification" in (queued.run_dir / "config.yaml").read_text()
    (tmp_path / "numbers.csv").write_text("x\n1\n2\n3\n")
    with pytest.raises(ConfigError, match="numbers.csv has no column of text"):
        jobs.submit(JobConfig(data=DataConfig(path=str(tmp_path / "numbers.csv"))))
    (tmp_path / "ids.csv").write_text("ticket_id,opened,body\n" + "".join(
        f"T{i},2024-01-{i + 1:02d},the customer wrote about issue {i} at length\n" for i in range(9)))
    with pytest.raises(ConfigError, match="names no task"):
        jobs.submit(JobConfig(data=DataConfig(path=str(tmp_path / "ids.csv"))))


def _until(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _Stateful:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)


def test_only_an_importable_function_goes_to_a_training_process():
    from core.jobs import _sendable
    from core.engine.runner import run_job

    assert _sendable(run_job) and _sendable(fake_train) and _sendable(partial(fake_train, steps=3))
    assert not _sendable(fake_trainer())  # a closure
    assert not _sendable(_Stateful())  # an object the test may drive from here
    assert not _sendable(lambda *a, **k: None)
    assert not _sendable(partial(fake_train, steps=threading.Event()))  # an argument it cannot send

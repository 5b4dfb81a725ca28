"""The job manager's queue, stop and failure handling, with a stand-in for the trainer that behaves like one."""
import time

import pytest

from core.config import ConfigError, JobConfig
from core.engine.events import Reporter
from core.engine.runner import JobFailed
from core.jobs import JobManager


def _config(name):
    config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only", name=name)
    config.data.path = "data.csv"
    return config


def fake_trainer(steps=50, fail_at=None):
    """Runs `steps` steps of 20 ms, reporting like the real runner; honours stop; can fail."""

    def run(config, home, sinks, stop, run, resume):
        reporter = Reporter(run.metrics, sinks)
        run.write_status("training", "Training.")
        reporter.emit("status", status="training", message="Training.")
        for step in range(1, steps + 1):
            if stop.is_set():
                run.write_status("stopped", f"Stopped at step {step - 1}.")
                reporter.emit("status", status="stopped", message=f"Stopped at step {step - 1}.")
                return run
            if step == fail_at:
                run.write_status("failed", "The job failed: boom")
                raise JobFailed("The job failed: boom")
            reporter.emit("train", step=step, total_steps=steps, loss=1.0 / step)
            time.sleep(0.02)
        run.write_status("completed", "Finished.")
        reporter.emit("status", status="completed", message="Finished.")
        return run

    return run


def test_jobs_queue_in_order_and_know_their_position(home):
    manager = JobManager(home, run_fn=fake_trainer(steps=30))
    first = manager.submit(_config("a"), owner="alice")
    second = manager.submit(_config("b"), owner="bob")
    third = manager.submit(_config("c"), owner="bob")
    time.sleep(0.1)
    assert manager.snapshot(first).status == "training"
    assert manager.snapshot(second).queue_position == 1
    assert manager.snapshot(third).queue_position == 2
    for job in (first, second, third):
        assert manager.wait(job, timeout=10).status == "completed"
    assert [s.config.name for s in manager.jobs(owner="bob")] == ["b", "c"]
    assert manager.latest("bob").config.name == "c"
    snap = manager.snapshot(first)
    assert snap.progress["step"] == 30 and snap.run_dir.joinpath("metrics.jsonl").is_file()


def test_stop_ends_a_running_job_and_dequeues_a_waiting_one(home):
    manager = JobManager(home, run_fn=fake_trainer(steps=500))
    running = manager.submit(_config("a"))
    waiting = manager.submit(_config("b"))
    time.sleep(0.2)
    manager.stop(waiting)
    manager.stop(running)
    assert manager.wait(running, timeout=5).status == "stopped"
    assert manager.snapshot(waiting).status == "stopped"
    assert "queue" in manager.snapshot(waiting).message


def test_a_failure_is_reported_and_the_next_job_runs(home):
    calls = {"n": 0}
    trainer = fake_trainer(steps=5, fail_at=3)
    good = fake_trainer(steps=5)

    def run(*args, **kwargs):
        calls["n"] += 1
        return (trainer if calls["n"] == 1 else good)(*args, **kwargs)

    manager = JobManager(home, run_fn=run)
    bad_job = manager.submit(_config("bad"))
    good_job = manager.submit(_config("good"))
    bad = manager.wait(bad_job, timeout=5)
    assert bad.status == "failed" and "boom" in bad.error
    assert manager.wait(good_job, timeout=5).status == "completed"


def test_an_unexpected_crash_never_reads_as_completed(home):
    def crash(config, home, sinks, stop, run, resume):
        run.write_status("training", "Training.")
        raise ValueError("something unexpected")

    manager = JobManager(home, run_fn=crash)
    job = manager.wait(manager.submit(_config("x")), timeout=5)
    assert job.status == "failed" and "something unexpected" in job.error


def test_invalid_settings_are_refused_at_submit(home):
    manager = JobManager(home, run_fn=fake_trainer())
    config = _config("x")
    config.train.batch_size = -4
    with pytest.raises(ConfigError, match="batch_size"):
        manager.submit(config)
    assert manager.jobs() == []

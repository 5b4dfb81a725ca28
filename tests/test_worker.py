"""The training process and its supervisor: a SIGKILL near the memory limit reads as out of memory (with the
settings to lower), a native crash as a crash (its stack in train.log), a vanished server as an interruption;
and Stop reaches a phase that never checks for it. Stand-in trainers in real processes."""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from functools import partial

import pytest

from core.engine.events import Reporter, read_events
from core.engine.interrupt import StopNow, stop_interrupts
from core.jobs import JobManager
from core.runs import RunDir
from core.supervisor import ChildExit, WorkerProcess, WorkerSettings, explain_exit, likely_out_of_memory
from core.worker import JobRequest
from tests.test_jobs import FAST, _config, _until, fake_train


def segfault_train(config, home, sinks, stop, run, resume):
    """Three steps, then a real segmentation fault (a read of address 0)."""
    reporter = Reporter(run.metrics, sinks)
    run.write_status("training", "Training.")
    for step in (1, 2, 3):
        reporter.emit("train", step=step, total_steps=10, loss=1.0)
    ctypes.string_at(0)


def _rss(pid: int) -> int:
    return next(int(line.split()[1]) * 1024 for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))


def test_a_sigkill_near_the_memory_limit_reads_as_out_of_memory(home):
    with JobManager(home, run_fn=partial(fake_train, steps=10_000), settings=FAST) as probe:
        assert _until(lambda: probe.health().worker == "ready")
        limit = int(_rss(probe.health().worker_pid) * 1.1)  # what a training process this size may use
    settings = WorkerSettings(preload=False, memory_limit_bytes=limit)
    with JobManager(home, run_fn=partial(fake_train, steps=10_000), settings=settings) as jobs:
        config = _config("big")
        config.train.batch_size, config.train.max_length = 16, 512
        job = jobs.submit(config)
        assert _until(lambda: jobs.snapshot(job).progress.get("step", 0) >= 3)
        time.sleep(0.6)  # the supervisor looks at the process's memory twice a second
        os.kill(jobs.snapshot(job).worker_pid, signal.SIGKILL)  # what the kernel's OOM killer sends
        snap = jobs.wait(job, timeout=20)
    assert snap.status == "failed", snap.message
    assert snap.message.startswith("The training process was killed while the machine was almost out of memory")
    assert "batch size 16 -> 8" in snap.message and "max length 512 -> 256" in snap.message
    assert snap.error == snap.message and snap.resume.can_resume is False  # failed before any checkpoint


def test_a_native_crash_is_reported_and_its_stack_kept(home):
    with JobManager(home, run_fn=segfault_train, settings=FAST) as jobs:
        snap = jobs.wait(jobs.submit(_config("crash")), timeout=30)
        assert jobs.health().worker in ("starting", "ready")  # the next process is already on its way
    assert snap.status == "failed" and "crashed at step 3 (SIGSEGV, a segmentation fault" in snap.message
    assert "Fatal Python error: Segmentation fault" in (snap.run_dir / "train.log").read_text()


def test_a_server_that_goes_away_leaves_its_run_interrupted(home):
    from core.engine.runner import create_run

    run = create_run(_config("orphaned"), home)
    worker = WorkerProcess(home, preload=False)
    worker.conn.send(JobRequest(partial(fake_train, steps=10_000), None, str(home.root), str(run.path), False))
    assert _until(lambda: any(e["type"] == "train" for e in read_events(run.metrics)))
    worker.conn.close()  # the server died: its end of the connection closed
    assert worker.proc.wait(timeout=20) == 0
    status = run.read_status()
    assert status["status"] == "interrupted", status
    assert status["message"].startswith("The studio stopped while this run was going")
    assert read_events(run.metrics)[-1]["status"] == "interrupted"


def test_explain_exit_tells_the_causes_apart(tmp_path):
    run = RunDir(tmp_path)
    advice = partial(str, "The job ran out of memory. Retry with smaller settings: batch size 8 -> 4.")
    sure = explain_exit(ChildExit(returncode=-9, oom_kills=1, last_step=7), run, advice)
    assert sure[0] == "failed" and sure[1].startswith("The system ran out of memory and ended the training process "
                                                      "at step 7. Retry with smaller settings")
    killed = explain_exit(ChildExit(returncode=-9, last_rss=1, memory_limit=100, available_share=0.5), run, advice)
    assert killed[0] == "interrupted" and "killed (SIGKILL)" in killed[1]
    assert explain_exit(ChildExit(returncode=-6), run, advice)[1].startswith("The training process crashed (SIGABRT")
    assert explain_exit(ChildExit(returncode=3, received=2), run, advice)[1].startswith(
        "The training process ended unexpectedly (exit code 3)")
    early = explain_exit(ChildExit(returncode=1), run, advice, tmp_path / "worker.log")[1]
    assert early.startswith("The training process ended before it could start the job") and "worker.log" in early
    stopped = explain_exit(ChildExit(returncode=-9, stop_requested=True, escalated="killed", grace_s=60), run, advice)
    assert stopped[0] == "stopped" and "had not ended 60 s after Stop" in stopped[1]
    assert likely_out_of_memory(ChildExit(available_share=0.01)) == (True, False)


def test_stop_interrupts_a_phase_that_never_checks_for_it():
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.time()
    with pytest.raises(StopNow):
        with stop_interrupts(stop):
            while time.time() - started < 10:  # a long evaluation that never looks at the stop event
                sum(range(1000))
    assert time.time() - started < 2
    with stop_interrupts(threading.Event()):  # not set: the block runs to its end, nothing is raised later
        pass
    time.sleep(0.3)


def test_stop_interrupts_nothing_off_the_main_thread():
    stop, done = threading.Event(), []
    stop.set()

    def evaluate():
        with stop_interrupts(stop):
            time.sleep(0.3)
        done.append(True)

    thread = threading.Thread(target=evaluate)
    thread.start()
    thread.join()
    assert done == [True]

"""Faults: Stop at every phase, out of memory, an exception inside training, SIGKILL and resume, and a soak.

Every job here runs through the real runner on a tiny BERT built from config (strategy "full", so there are
Trainer checkpoints), and every run it leaves must be consistent: a final, truthful status.json, a readable
metrics.jsonl, and weights wherever training had started. Jobs given to a ``JobManager`` train in a process of
their own (``core.worker``), so the faults are injected there (``tests.test_hardening_support``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from core.engine.events import read_events
from core.home import Home
from core.runs import RunDir
from core.engine.runner import JobFailed, run_job
from core.export import export_zip
from core.jobs import JobManager
from core.supervisor import WorkerSettings
from tests.conftest import REPO
from tests.test_hardening_support import (StopAt, assert_consistent, job, rss_mb, run_job_with_faults, text_csv,
                                          tiny_bert)

WAIT = 120  # seconds; a job here takes one or two


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("fault-bert") / "bert")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return text_csv(tmp_path_factory.mktemp("fault-data") / "texts.csv")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """One studio's job manager for the module, its training processes running ``run_job_with_faults``."""
    home = Home.resolve(tmp_path_factory.mktemp("fault-jobs") / "home")
    with JobManager(home, run_fn=run_job_with_faults, settings=WorkerSettings(preload=True)) as manager:
        yield manager


def _is(kind, **fields):
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


# phase -> (when Stop is pressed, the status the run must end with, whether weights must be saved)
STOP_POINTS = {
    "loading": (_is("phase", phase="loading"), "stopped", False),
    "caching": (_is("phase", phase="caching"), "stopped", False),
    "training": (lambda e: e["type"] == "train" and e.get("step", 0) >= 2, "stopped", True),
    "saving": (_is("phase", phase="saving"), "stopped", True),  # weights kept, the comparison skipped
    "evaluating": (_is("status", status="evaluating"), "stopped", True),  # the comparison is cut short
}


@pytest.mark.parametrize("phase", list(STOP_POINTS))
def test_stop_at_every_phase_leaves_a_consistent_run(home, bert, data, phase):
    match, expected, weights = STOP_POINTS[phase]
    stop = threading.Event()
    sink = StopAt(stop, match)
    epochs = 3.0 if phase == "training" else 1.0
    run = run_job(job(bert, data, f"stop-{phase}", epochs=epochs), home, sinks=[sink], stop=stop)
    assert stop.is_set(), f"the {phase} phase never came"
    status = assert_consistent(run)
    assert status["status"] == expected, status
    assert (run.model / "model.safetensors").is_file() == weights
    if phase == "training":
        assert "saved" in status["message"] and run.last_checkpoint() is not None
        steps = [e["step"] for e in read_events(run.metrics) if e["type"] == "train"]
        assert max(steps) < 18  # 3 epochs of 6 steps: it stopped early
    if phase in ("saving", "evaluating"):
        assert "saved" in status["message"] and run.read_eval() is None
    if not weights:
        assert "nothing was trained" in status["message"]


def test_an_export_cut_short_leaves_the_run_and_no_half_zip(home, bert, data, tmp_path, monkeypatch):
    run = run_job(job(bert, data, "export-me", epochs=1.0), home)
    before = run.status_file.read_text()
    real_write = zipfile.ZipFile.write
    calls = {"n": 0}

    def write_then_die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process is told to stop in the middle of the export
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        export_zip(run.path, tmp_path / "out")
    assert not (tmp_path / "out" / f"{run.name}.zip").exists()
    assert run.status_file.read_text() == before and assert_consistent(run)["status"] == "completed"
    monkeypatch.setattr(zipfile.ZipFile, "write", real_write)
    target = export_zip(run.path, tmp_path / "out")  # trying again works
    assert zipfile.ZipFile(target).testzip() is None


def test_failures_inside_training_end_their_job_and_the_next_job_runs(jobs, bert, data, tmp_path):
    """The allocator's out-of-memory error, an exception in the training step, and a real allocation failure
    (a training process whose address space cannot grow enough) each end their own job in plain words; the next
    job runs in a fresh process, without the cap."""
    big = tiny_bert(tmp_path / "big", hidden=64, max_positions=512)
    long = text_csv(tmp_path / "long.csv", words_per_row=500)
    ids = [jobs.submit(job(bert, data, name, epochs=1.0)) for name in ("alloc", "crash")]
    ids.append(jobs.submit(job(big, long, "capped", epochs=1.0, batch_size=32, max_length=512)))
    ids.append(jobs.submit(job(bert, data, "fine", epochs=1.0)))
    oom, boom, capped, fine = (jobs.wait(i, timeout=WAIT) for i in ids)
    assert oom.status == "failed" and "ran out of memory" in oom.error
    assert "batch size 8 -> 4" in oom.error  # a smaller setting to try, from the filled-in job
    assert boom.status == "failed" and "boom inside the training step" in boom.error
    assert "Traceback" in (boom.run_dir / "train.log").read_text()
    assert capped.status == "failed" and "ran out of memory" in capped.error, capped
    assert "batch size 32 -> 16" in capped.error and "max length 512 -> 256" in capped.error
    assert "allocate" in RunDir(capped.run_dir).log.read_text()  # the allocator's own words, for the log's reader
    assert fine.status == "completed", fine.message
    for snap in (oom, boom, capped, fine):
        assert_consistent(RunDir(snap.run_dir))


def test_stop_during_the_evaluation_ends_the_training_process_at_once(jobs, bert, data):
    job_id = jobs.submit(job(bert, data, "slow-eval", epochs=1.0))
    deadline = time.time() + WAIT
    while jobs.snapshot(job_id).status != "evaluating":
        assert time.time() < deadline and jobs.snapshot(job_id).active, jobs.snapshot(job_id).message
        time.sleep(0.05)
    pressed = time.time()
    jobs.stop(job_id)
    snap = jobs.wait(job_id, timeout=WAIT)
    assert time.time() - pressed < 10  # not the minute the evaluation would take, nor the stop grace
    assert snap.status == "stopped" and snap.message.startswith("Stopped during the evaluation"), snap.message
    run = RunDir(snap.run_dir)
    assert (run.model / "model.safetensors").is_file() and run.read_eval() is None
    assert_consistent(run)


def test_a_killed_training_shows_as_interrupted_and_resumes(home, bert, data, tmp_path):
    config = job(bert, data, "killed", max_steps=120, save_every=40, eval_every=60, epochs=100.0)
    config_path = config.save(tmp_path / "job.yaml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "train", str(config_path), "--home",
                             str(home.root)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    run = _kill_after_checkpoint(proc, home, at_step=80)
    status = run.read_status()
    assert status["status"] == "interrupted" and "Resume" in status["message"]
    before = read_events(run.metrics)
    killed_at = max(e["step"] for e in before if e["type"] == "train")
    checkpoint = run.last_checkpoint()
    saved_at = int(checkpoint.name.split("-")[1])
    assert saved_at >= 80 and killed_at >= saved_at - 6  # logged every few steps, up to the kill
    assert len(before) >= len(run.metrics.read_text().splitlines()) - 1  # at most the line being written is lost

    with JobManager(home, settings=WorkerSettings(preload=False)) as manager:
        resumed = manager.wait(manager.resume(run.path, owner="me"), timeout=WAIT)
    assert resumed.status == "completed", resumed.message
    after = read_events(run.metrics)[len(before):]
    assert any(f"Resuming from {checkpoint.name}" in e.get("message", "") for e in after)
    first_step = next(e["step"] for e in after if e["type"] == "train")
    assert first_step == saved_at  # it went on from the checkpoint, not from 0
    assert max(e["step"] for e in after if e["type"] == "train") == 120
    assert_consistent(run)


def _kill_after_checkpoint(proc, home, at_step: int) -> RunDir:
    deadline = time.time() + WAIT
    try:
        while time.time() < deadline:
            assert proc.poll() is None, f"the job ended before it could be killed: {proc.stderr.read()[-3000:]}"
            runs = list(home.runs.iterdir())
            if runs:
                run = RunDir(runs[0])
                last = run.last_checkpoint()
                if last is not None and int(last.name.split("-")[1]) >= at_step:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)  # reaped, so its pid reads as dead
                    return run
            time.sleep(0.05)
        raise AssertionError("no checkpoint appeared in time")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_train_stop_cycles_leave_the_server_flat(jobs, bert, data):
    """Soak: three jobs, the middle one stopped mid-training. Each trains in a fresh process that is gone
    afterwards; the server itself never loads a model and its memory stays flat."""
    rss, pids = [], []
    for cycle in range(3):
        job_id = jobs.submit(job(bert, data, f"soak-{cycle}", epochs=4.0 if cycle % 2 else 1.0))
        if cycle % 2:
            _stop_when_training(jobs, job_id)
        snap = jobs.wait(job_id, timeout=WAIT)
        assert snap.status == ("stopped" if cycle % 2 else "completed"), snap.message
        pids.append(RunDir(snap.run_dir).read_status()["pid"])
        assert not _alive(pids[-1])  # its training process ended with it
        rss.append(rss_mb())
        print("SOAK", cycle, snap.status, round(snap.finished - snap.submitted, 2), round(rss[-1]))
    assert len(set(pids)) == 3 and os.getpid() not in pids
    assert max(rss) - rss[0] < 60, f"server RSS after each job (MB): {[round(r) for r in rss]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_when_training(manager: JobManager, job_id: str) -> None:
    deadline = time.time() + WAIT
    while time.time() < deadline:
        snap = manager.snapshot(job_id)
        if snap.progress.get("step", 0) >= 2 or not snap.active:
            manager.stop(job_id)
            return
        time.sleep(0.02)


def test_a_failed_run_before_training_raises_plainly(home, data):
    with pytest.raises(JobFailed) as info:
        run_job(job(home.root / "no-such-model-folder", data, "missing"), home)
    assert "There is no folder" in str(info.value) or "no-such-model-folder" in str(info.value)
    (run_dir,) = list(home.runs.iterdir())
    assert assert_consistent(RunDir(run_dir))["status"] == "failed"

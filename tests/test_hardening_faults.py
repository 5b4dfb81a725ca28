"""Faults: Stop at every phase, out of memory, an exception inside training, SIGKILL and resume, and a soak.

Every job here runs through the real runner on a tiny BERT built from config (strategy "full", so there are
Trainer checkpoints), and every run it leaves must be consistent: a final, truthful status.json, a readable
metrics.jsonl, and weights wherever training had started.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

from core.engine.events import read_events
from core.runs import RunDir
from core.engine.runner import JobFailed, run_job
from core.export import export_zip
from core.jobs import JobManager
from tests.conftest import REPO
from tests.test_hardening_support import (StopAt, assert_consistent, job, live_models, rss_mb, text_csv,
                                          tiny_bert)

WAIT = 120  # seconds; a job here takes one or two


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("fault-bert") / "bert")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return text_csv(tmp_path_factory.mktemp("fault-data") / "texts.csv")


def _is(kind, **fields):
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


# phase -> (when Stop is pressed, the status the run must end with, whether weights must be saved)
STOP_POINTS = {
    "loading": (_is("phase", phase="loading"), "stopped", False),
    "caching": (_is("phase", phase="caching"), "stopped", False),
    "training": (lambda e: e["type"] == "train" and e.get("step", 0) >= 2, "stopped", True),
    "saving": (_is("phase", phase="saving"), "stopped", True),  # weights kept, the comparison skipped
    "evaluating": (_is("status", status="evaluating"), "completed", True),  # seconds from the end: it finishes
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
    if expected == "completed":
        assert run.read_eval()["tuned"]["accuracy"] >= 0
    if phase == "saving":
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


ALLOCATOR_MESSAGE = ("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: you "
                     "tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)")


def test_injected_failures_end_their_job_and_the_next_job_runs(home, bert, data, monkeypatch):
    from core.engine.classify.finetune import ClassifierTrainer

    real_step = ClassifierTrainer.training_step

    def step(self, model, inputs, *args, **kwargs):
        if "-alloc" in self.args.output_dir:
            raise RuntimeError(ALLOCATOR_MESSAGE)
        if "-crash" in self.args.output_dir:
            raise ValueError("boom inside the training step")
        return real_step(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(ClassifierTrainer, "training_step", step)
    manager = JobManager(home)
    ids = [manager.submit(job(bert, data, name, epochs=1.0)) for name in ("alloc", "crash", "fine")]
    oom, boom, fine = (manager.wait(i, timeout=WAIT) for i in ids)
    assert oom.status == "failed" and "ran out of memory" in oom.error
    assert "batch size 8 -> 4" in oom.error  # a smaller setting to try, from the filled-in job
    assert boom.status == "failed" and "boom inside the training step" in boom.error
    assert "Traceback" in (boom.run_dir / "train.log").read_text()
    assert fine.status == "completed", fine.message
    for snap in (oom, boom, fine):
        assert_consistent(RunDir(snap.run_dir))


OOM_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    import torch
    torch.set_num_threads(1)
    from core.home import Home
    from core.jobs import JobManager
    from tests.test_hardening_support import job, text_csv, tiny_bert

    root = Path(sys.argv[1])
    home = Home.resolve(root / "home")
    small, big = tiny_bert(root / "small"), tiny_bert(root / "big", hidden=64, max_positions=512)
    short, long = text_csv(root / "short.csv"), text_csv(root / "long.csv", words_per_row=500)
    manager = JobManager(home)
    def run(config):
        snap = manager.wait(manager.submit(config), timeout=240)
        return {"status": snap.status, "error": snap.error, "run": str(snap.run_dir)}
    # everything a job imports, imported before the cap (a warm-up job would cost seconds more)
    import core.engine.classify.head_only, core.engine.classify.finetune, core.engine.classify.baselines, peft, sklearn.linear_model
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 400 * 1024**2, hard))
    oom = run(job(big, long, "too-big", epochs=1.0, batch_size=32, max_length=512))
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    after = run(job(small, short, "after", epochs=1.0))
    print("RESULT " + json.dumps({"oom": oom, "after": after}))
""")


def test_a_real_out_of_memory_fails_plainly_and_the_studio_keeps_serving(tmp_path):
    script = tmp_path / "oom.py"
    script.write_text(OOM_SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path), str(REPO)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=REPO)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(line.removeprefix("RESULT "))
    oom = result["oom"]
    assert oom["status"] == "failed" and "ran out of memory" in oom["error"], oom
    assert "batch size 32 -> 16" in oom["error"] and "max length 512 -> 256" in oom["error"]
    log = RunDir(Path(oom["run"])).log.read_text()
    assert "allocate" in log  # the allocator's own words are kept for whoever reads the log
    assert result["after"]["status"] == "completed", result["after"]


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

    manager = JobManager(home)
    resumed = manager.wait(manager.submit(None, owner="me", resume_run=run.path), timeout=WAIT)
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


def test_train_stop_cycles_free_their_models(home, bert, data):
    """Soak: six jobs, every other one stopped mid-training; memory stays flat after the warm-up."""
    manager = JobManager(home)
    rss = []
    for cycle in range(6):
        job_id = manager.submit(job(bert, data, f"soak-{cycle}", epochs=4.0 if cycle % 2 else 1.0))
        if cycle % 2:
            _stop_when_training(manager, job_id)
        snap = manager.wait(job_id, timeout=WAIT)
        assert snap.status == ("stopped" if cycle % 2 else "completed"), snap.message
        assert live_models() == 0  # the job's models were freed
        rss.append(rss_mb())
        print("SOAK", cycle, snap.status, round(snap.finished - snap.submitted, 2), round(rss[-1]))
    growth = max(rss[3:]) - rss[1]
    assert growth < 60, f"RSS after each job (MB): {[round(r) for r in rss]}"


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

"""The real studio server (``tests.studio_server``: ``studio.app.launch`` around a ``JobManager``) against real
faults: its training process SIGKILLed, then the whole server SIGKILLed and started again on the same home.

Each job fine-tunes a tiny BERT (strategy "full", so there are checkpoints); the page's own Resume button comes
with the browser tests, on top of the same manager calls.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from core.runs import FINAL_STATUSES, RunDir
from tests.studio_server import OWNER, Server
from tests.test_hardening_support import job, text_csv, tiny_bert

ACTIVE = ("queued", "preparing", "training", "evaluating")


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("restart-bert") / "bert")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return text_csv(tmp_path_factory.mktemp("restart-data") / "texts.csv")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path, bert, data, name, **train):
    return job(bert, data, name, **train).save(tmp_path / f"{name}.yaml")


def _saved_step(run: str) -> int:
    checkpoint = RunDir(Path(run)).last_checkpoint()
    return int(checkpoint.name.split("-")[1]) if checkpoint else 0


def test_a_killed_training_process_leaves_the_server_up_and_the_run_resumable(tmp_path, bert, data):
    server = Server(tmp_path / "home", _port())
    try:
        config = _config(tmp_path, bert, data, "killed", max_steps=60, save_every=10, eval_every=30, epochs=100.0)
        job_id = server.ask(f"submit {config}")["job"]
        snap = server.until(job_id, lambda s: s["status"] == "training" and _saved_step(s["run"]) >= 20)
        run, saved = snap["run"], _saved_step(snap["run"])
        os.kill(snap["worker_pid"], signal.SIGKILL)
        assert server.http_ok()  # the page is still served
        ended = server.until(job_id, lambda s: s["status"] not in ACTIVE)
        assert ended["status"] == "interrupted", ended
        assert "killed (SIGKILL)" in ended["message"] and "kept serving" in ended["message"]
        assert ended["can_resume"] and f"step {_saved_step(run)}" in ended["resume_reason"]

        resumed = server.ask(f"resume {run}")["job"]
        done = server.until(resumed, lambda s: s["status"] in FINAL_STATUSES)
        assert done["status"] == "completed", done
        after = [step for step in done["loss_steps"] if step > saved] or [0]
        assert max(after) == 60  # it went on to the end
        assert "nothing to resume" in server.ask(f"resume {run}")["refused"]  # never trained over
        assert server.http_ok()
    finally:
        server.close()


def test_the_queue_and_the_interrupted_run_survive_a_killed_server(tmp_path, bert, data):
    home = tmp_path / "home"
    first = Server(home, _port())
    try:
        long = _config(tmp_path, bert, data, "long", max_steps=100, save_every=10, eval_every=50, epochs=100.0)
        short = _config(tmp_path, bert, data, "waiting", epochs=1.0)
        training = first.ask(f"submit {long}")["job"]
        waiting = first.ask(f"submit {short}")["job"]
        snap = first.until(training, lambda s: s["status"] == "training" and _saved_step(s["run"]) >= 20)
        assert first.ask(f"snapshot {waiting}")["queue_position"] == 1
        run, child = snap["run"], snap["worker_pid"]
        first.kill()
    finally:
        first.close()
    # The training process notices its server is gone, stops within a step keeping a checkpoint, and says so.
    deadline = time.time() + 120
    while time.time() < deadline and _alive(child):
        time.sleep(0.2)
    assert not _alive(child), "the training process outlived its server"
    status = RunDir(Path(run)).read_status()
    assert status["status"] == "interrupted" and "The studio stopped" in status["message"], status

    second = Server(home, _port())
    try:
        assert second.http_ok()
        again = second.ask(f"snapshot {training}")
        assert again["status"] == "interrupted" and again["can_resume"], again
        assert f"step {_saved_step(run)}" in again["resume_reason"]
        assert second.ask(f"latest {OWNER}")["job"] == waiting  # what the page re-attaches to
        resumed = second.ask(f"resume {run}")["job"]  # queued behind the job that waited across the restart
        done = second.until(waiting, lambda s: s["status"] in FINAL_STATUSES)  # the queue went on by itself
        assert done["status"] == "completed", done
        finished = second.until(resumed, lambda s: s["status"] in FINAL_STATUSES, timeout=240)
        assert finished["status"] == "completed", finished
        assert max(finished["loss_steps"]) == 100
    finally:
        second.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

"""The real studio server (``tests.studio_server``: ``studio.app.launch`` around a ``JobManager``) against real
faults: a training process SIGKILLed, then the whole server SIGKILLed and started again on the same home.

The jobs fine-tune a tiny BERT (strategy "full", so there are checkpoints). One test, two servers: every server
start and every training process costs a stack import, so the phases share them. The page's own Resume button
comes with the browser tests, on top of the same manager calls.
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


def test_kills_of_the_training_process_and_of_the_server_lose_nothing(tmp_path, bert, data):
    home = tmp_path / "home"
    first = Server(home, _port())
    try:
        # 1. The training process is SIGKILLed: the server answers, the run says so, Resume is offered.
        long = _config(tmp_path, bert, data, "long", max_steps=100, save_every=10, eval_every=50)
        other = _config(tmp_path, bert, data, "other", max_steps=60, save_every=10, eval_every=30)
        killed = first.ask(f"submit {long}")["job"]
        waiting = first.ask(f"submit {other}")["job"]
        snap = first.until(killed, lambda s: s["status"] == "training" and _saved_step(s["run"]) >= 20)
        long_run = snap["run"]
        os.kill(snap["worker_pid"], signal.SIGKILL)
        assert first.http_ok()  # the page is still served
        ended = first.until(killed, lambda s: s["status"] not in ACTIVE)
        assert ended["status"] == "interrupted", ended
        assert "killed (SIGKILL)" in ended["message"] and "kept serving" in ended["message"]
        assert ended["can_resume"] and f"goes on from step {_saved_step(long_run)}" in ended["resume_reason"]

        # 2. The next job runs; the killed one is resumed behind it; then the whole server is SIGKILLed.
        snap = first.until(waiting, lambda s: s["status"] == "training" and _saved_step(s["run"]) >= 20)
        other_run, child = snap["run"], snap["worker_pid"]
        resumed = first.ask(f"resume {long_run}")["job"]
        assert first.ask(f"snapshot {resumed}")["queue_position"] == 1
        first.kill()
    finally:
        first.close()
    # Its training process notices, stops within a step keeping a checkpoint, and marks the run interrupted.
    deadline = time.time() + 120
    while time.time() < deadline and _alive(child):
        time.sleep(0.2)
    assert not _alive(child), "the training process outlived its server"
    status = RunDir(Path(other_run)).read_status()
    assert status["status"] == "interrupted" and status["message"].startswith("The studio stopped"), status

    second = Server(home, _port())
    try:
        # 3. After the restart: the interrupted run offers Resume, the queued resume runs by itself.
        assert second.http_ok()
        again = second.ask(f"snapshot {waiting}")
        assert again["status"] == "interrupted" and again["can_resume"], again
        assert f"goes on from step {_saved_step(other_run)}" in again["resume_reason"]
        assert second.ask(f"latest {OWNER}")["job"] == resumed  # what the page re-attaches to
        finished_other = second.ask(f"resume {other_run}")["job"]
        done = second.until(resumed, lambda s: s["status"] in FINAL_STATUSES, timeout=240)
        assert done["status"] == "completed" and max(done["loss_steps"]) == 100, done
        done = second.until(finished_other, lambda s: s["status"] in FINAL_STATUSES, timeout=240)
        assert done["status"] == "completed" and max(done["loss_steps"]) == 60, done
        assert "nothing to resume" in second.ask(f"resume {long_run}")["refused"]  # never trained over
        assert second.http_ok()
    finally:
        second.close()


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path, bert, data, name, **train):
    return job(bert, data, name, epochs=100.0, **train).save(tmp_path / f"{name}.yaml")


def _saved_step(run: str) -> int:
    checkpoint = RunDir(Path(run)).last_checkpoint()
    return int(checkpoint.name.split("-")[1]) if checkpoint else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

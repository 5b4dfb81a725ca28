"""Faults seen from the page, in a real browser against a real studio server (``tests.studio_server``):

1. the training process is SIGKILLed: the page keeps working, says what happened, and its Resume button takes the
   run on to "Finished";
2. the whole server is SIGKILLed mid-run: the page says it lost the studio; the studio is started again on the same
   home and port; the page re-attaches by itself, shows the run as interrupted, and Resume finishes it.

The job fine-tunes a tiny BERT in full (so there are checkpoints), typed into the page as a local model folder.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from core.runs import RunDir
from tests.studio_server import Server
from tests.test_hardening_support import text_csv, tiny_bert

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 300_000


def test_a_killed_training_and_a_killed_studio_both_end_in_finished_runs(browser, tmp_path, screenshots):
    bert, data = tiny_bert(tmp_path / "bert"), text_csv(tmp_path / "tickets.csv", rows=90)
    home, port = tmp_path / "home", _port()
    server = Server(home, port)
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(server.url)
        _set_up_job(page, data, bert)

        # 1. The training process is killed: the studio answers, the page says so and offers Resume.
        _start_and_wait_for_a_checkpoint(page, home)
        os.kill(server.ask("health")["worker_pid"], signal.SIGKILL)
        _wait_for_text(page, "#train-status", "Interrupted")
        assert "killed" in page.inner_text("#train-status") and server.http_ok()
        page.wait_for_selector("#train-resume", state="visible")
        assert "goes on from step" in page.inner_text("#train-resume").lower()
        page.screenshot(path=str(screenshots / "fault-1-training-killed.png"), full_page=True)
        page.click("#train-resume")
        _wait_for_text(page, "#train-status", "Finished", TIMEOUT_MS)

        # 2. The whole studio is killed mid-run: the page says it lost contact, then re-attaches to the new one.
        _start_and_wait_for_a_checkpoint(page, home, previous=_runs(home))
        server.kill()
        page.wait_for_selector("#st-lost", state="visible", timeout=30_000)
        assert "Lost contact with the studio" in page.inner_text("#st-lost")
        page.screenshot(path=str(screenshots / "fault-2-studio-lost.png"), full_page=False)
        server = Server(home, port)
        page.wait_for_event("load", timeout=TIMEOUT_MS)  # the page reloads itself once the new studio answers
        page.get_by_role("tab", name="4 · Train").click()
        _wait_for_text(page, "#train-status", "Interrupted", TIMEOUT_MS)
        page.wait_for_selector("#train-resume", state="visible")
        page.screenshot(path=str(screenshots / "fault-3-reattached.png"), full_page=True)
        page.click("#train-resume")
        _wait_for_text(page, "#train-status", "Finished", TIMEOUT_MS)
        assert all(RunDir(run).read_status()["status"] == "completed" for run in _runs(home))
    finally:
        page.screenshot(path=str(screenshots / "fault-last.png"), full_page=True)
        context.close()
        server.close()


def _set_up_job(page, data: Path, bert: Path) -> None:
    """Upload the data, type the model folder, choose a full fine-tune of 80 steps."""
    page.locator("#data-upload input[type=file]").set_input_files(str(data))
    _wait_for_text(page, "#data-status", "Ready.", TIMEOUT_MS)
    page.click("#data-next")
    page.locator("#model-custom textarea, #model-custom input").first.fill(str(bert))
    page.locator("#model-custom textarea, #model-custom input").first.press("Tab")
    page.click("#model-next")
    page.locator("#settings-strategy").get_by_text("Full fine-tune", exact=True).click()
    page.get_by_text("Advanced: override a setting").click()
    field = page.locator("#settings-max_steps input")
    for _ in range(3):  # a value typed while gradio mounts the field can be dropped: type again until it shows
        field.fill("80")
        field.press("Tab")
        try:
            page.wait_for_function("() => (document.querySelector('#settings-yaml')?.innerText ?? '')"
                                   ".includes('max_steps: 80')", timeout=20_000)
            break
        except Exception:
            continue
    page.click("#settings-next")


def _start_and_wait_for_a_checkpoint(page, home: Path, previous: list[Path] = ()) -> None:
    page.get_by_role("tab", name="4 · Train").click()
    page.wait_for_selector("#train-start:not([disabled])", timeout=TIMEOUT_MS)
    page.click("#train-start")
    deadline = time.time() + TIMEOUT_MS / 1000
    while time.time() < deadline:
        runs = [r for r in _runs(home) if r not in previous]
        if runs and RunDir(runs[-1]).last_checkpoint() is not None:
            return
        time.sleep(0.2)
    raise AssertionError("no checkpoint was saved in time")


def _runs(home: Path) -> list[Path]:
    return sorted(p for p in (home / "runs").glob("*") if (p / "config.yaml").is_file())


def _wait_for_text(page, selector: str, text: str, timeout: int = 60_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText ?? '').includes(t)",
                           arg=[selector, text], timeout=timeout)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

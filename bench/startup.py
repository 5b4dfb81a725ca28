"""Start-up costs: the studio's cold start (``python -m core.cli ui`` until it answers HTTP) and the one-time
conversion of the packaged SmolLM2 into a fresh, empty studio home.

    .venv/bin/python -m bench.startup [--quick] [--json out.json]
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import (ROOT, Target, bench_env, free_port, median, peak_rss_mb, process_peak_rss_mb, row,
                     rss_mb, scratch_dir, section_main, timed)

SECTION = "startup"
COLD_START_TARGET_S = 10.0
STARTS, STARTS_QUICK = 3, 1
START_TIMEOUT_S = 180


class Studio:
    """``python -m core.cli ui --home HOME --port PORT`` as a child process; ``wait_http`` times its start.

    Args:
        home: the studio home folder.
        port: the port it listens on.
        log: where its output goes.
        command: the command to run (the real CLI unless a bench serves its own).
    """

    def __init__(self, home: Path, port: int, log: Path, command: list[str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        command = command or [sys.executable, "-m", "core.cli", "ui", "--home", str(home), "--port", str(port)]
        self.started = time.perf_counter()
        with open(log, "w") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                         env=bench_env(), cwd=ROOT, start_new_session=True, text=True)

    def wait_http(self, timeout: float = START_TIMEOUT_S) -> float:
        """Seconds from process start until ``GET /`` answers 200; raises when it dies or times out."""
        while time.perf_counter() - self.started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the studio exited with {self.proc.returncode} before answering: "
                                   f"{_tail(self.log)}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the studio did not answer within {timeout:.0f} s: {_tail(self.log)}")

    def peak_rss_mb(self) -> float | None:
        return process_peak_rss_mb(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _tail(log: Path, lines: int = 3) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])[-300:]
    except OSError:
        return "(no log)"


def cold_start(tmp: Path, index: int) -> dict:
    """One start of the real CLI in an empty home; the seconds until it answers and its idle peak RSS."""
    home = tmp / f"home{index}"
    studio = Studio(home, free_port(), tmp / f"studio{index}.log")
    try:
        seconds = studio.wait_http()
        time.sleep(0.5)
        return {"seconds": seconds, "idle_peak_rss_mb": studio.peak_rss_mb()}
    finally:
        studio.close()


def convert(tmp: Path) -> dict:
    """Resolve the packaged SmolLM2 in an empty home: the GGUF is dequantised and saved as safetensors."""
    from core.home import Home
    from core.models import resolve_model

    home = Home.resolve(tmp / "convert-home")
    before = rss_mb()
    with timed() as t:
        resolved = resolve_model("smollm2-135m-instruct", home, task="chat")
    with timed() as again:
        resolve_model("smollm2-135m-instruct", home, task="chat")
    return {"seconds": t["s"], "second_resolve_s": again["s"], "source": resolved.source,
            "rss_before_mb": before, "peak_rss_mb": peak_rss_mb()}


def run(quick: bool) -> dict:
    rows, details = [], {}
    with scratch_dir("startup") as tmp:
        tmp = Path(tmp)
        starts = []
        for i in range(STARTS_QUICK if quick else STARTS):
            try:
                starts.append(cold_start(tmp, i))
            except (RuntimeError, TimeoutError) as exc:
                rows.append(row(SECTION, "cold start: studio ui until HTTP 200", f"failed: {exc}"))
                break
        details["starts"] = starts
        if starts:
            times = [s["seconds"] for s in starts]
            rows.append(row(SECTION, "cold start: studio ui until HTTP 200", times[0], "s",
                            Target("<", COLD_START_TARGET_S),
                            f"first of {len(times)}; all: {', '.join(f'{t:.1f}' for t in times)} s "
                            f"(median {median(times):.1f})"))
            peak = starts[0]["idle_peak_rss_mb"]
            if peak:
                rows.append(row(SECTION, "studio idle peak RSS", peak, "MB"))
        if quick:  # the conversion alone takes 20-45 s: the smoke test leaves it to test_models
            rows.append(row(SECTION, "first-time SmolLM2 conversion (empty home)", "skipped: --quick"))
            return {"rows": rows, "details": details}
        try:
            details["conversion"] = c = convert(tmp)
            rows.append(row(SECTION, "first-time SmolLM2 conversion (empty home)", c["seconds"], "s",
                            note=f"then {c['second_resolve_s'] * 1000:.0f} ms to resolve again; peak RSS "
                                 f"{c['peak_rss_mb']:.0f} MB"))
        except Exception as exc:  # the table says why instead of losing the cold-start numbers
            rows.append(row(SECTION, "first-time SmolLM2 conversion (empty home)", f"failed: {exc}"[:200]))
    return {"rows": rows, "details": details}


def main(argv: list[str] | None = None) -> int:
    return section_main(SECTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())

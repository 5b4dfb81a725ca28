"""The UI under load: how fast the running studio answers while it trains, and how long Start takes to put the
first loss point on the curve (the model already cached).

The studio runs as its own process, built by ``studio.app.launch`` around a ``core.jobs.JobManager`` exactly
as ``studio ui`` builds it; the bench submits the default chat LoRA job (the bundled chat example) to that same
manager, which is what the Start button does (``tab_train._start`` -> ``manager.submit``). So the training
thread and the web server share one process, as for a user. Another process (this one) then sends sequential
requests and reads the run's ``metrics.jsonl`` for the first ``train`` event with a loss.

    .venv/bin/python -m bench.ui_load [--quick] [--json out.json] [--model-home DIR]
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from .common import (EXAMPLES, Target, add_model_home_option, free_port, link_chat_model, load_average, median,
                     percentile, row, scratch_dir, section_main)

SECTION = "ui"
MODEL = "smollm2-135m-instruct"
CHAT_EXAMPLE = EXAMPLES / "kettlebird_support.csv"
REQUESTS, REQUESTS_QUICK = 200, 30
IDLE_REQUESTS, IDLE_REQUESTS_QUICK = 50, 10
ENDPOINT = "/config"  # the page description every browser fetches; it goes through the same server threads
P95_TARGET_MS = 250.0
FIRST_LOSS_TARGET_S = 15.0
PEAK_RSS_TARGET_MB = 3 * 1024.0
FIRST_LOSS_TIMEOUT_S = 300


# --- the studio side (runs in the served process) --------------------------------------------------------
def serve(home: str, port: int, state: str) -> None:
    """Start the studio on ``port``; on "go" from stdin submit the chat job and write its run to ``state``."""
    from core.config import DataConfig, JobConfig
    from core.home import Home
    from core.jobs import JobManager
    from studio.app import launch

    studio_home = Home.resolve(home)
    manager = JobManager(studio_home)
    launch(studio_home, port=port, manager=manager, block=False)
    sys.stdin.readline()
    config = JobConfig(task="chat", model=MODEL, strategy="lora", data=DataConfig(path=str(CHAT_EXAMPLE)),
                       name="bench-ui-load")
    submitted = time.time()
    job_id = manager.submit(config, owner="bench")
    snap = manager.snapshot(job_id)
    written = Path(state).with_suffix(".partial")  # the measuring side polls for ``state``: never let it see half
    written.write_text(json.dumps({"submitted": submitted, "job_id": job_id, "run": str(snap.run_dir)}))
    os.replace(written, state)
    while True:
        time.sleep(3600)


# --- the measuring side ----------------------------------------------------------------------------------
def cached_model_home(tmp: Path, model_home: str | None) -> Path:
    """A fresh home whose model cache links to an already converted SmolLM2 (converted once if needed)."""
    from core.home import Home

    home = Home.resolve(tmp / "home")
    link_chat_model(home, model_home, MODEL, convert=True)
    return home.root


def latencies_ms(url: str, count: int) -> list[float]:
    """``count`` sequential GETs of ``url``; each one's wall time in ms (a failed request raises)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        times.append((time.perf_counter() - start) * 1000)
    return times


def first_loss_time(metrics: Path, timeout: float, event_log: list) -> dict | None:
    """The first ``train`` event with a loss in ``metrics.jsonl`` (waits for it); None on timeout.

    ``event_log`` receives the phase, log and status events before it: where the time went."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.is_file():
            event_log.clear()
            for line in metrics.read_text().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if event.get("type") == "train" and event.get("loss") is not None:
                    return event
                if event.get("type") in ("phase", "log", "status"):
                    event_log.append(event)
                if event.get("type") == "status" and event.get("status") == "failed":
                    raise RuntimeError(f"the job failed: {event.get('message')}")
        time.sleep(0.05)
    return None


def read_status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def measure(studio, quick: bool) -> dict:
    """Idle latency, then submit, first loss point, then latency while training."""
    url = studio.url + ENDPOINT
    idle = latencies_ms(url, IDLE_REQUESTS_QUICK if quick else IDLE_REQUESTS)
    state = Path(studio.state)
    studio.proc.stdin.write("go\n")
    studio.proc.stdin.flush()
    while not state.is_file():
        if studio.proc.poll() is not None:
            raise RuntimeError("the studio exited before the job was submitted")
        time.sleep(0.05)
    job = json.loads(state.read_text())
    run = Path(job["run"])
    before: list[dict] = []
    first = first_loss_time(run / "metrics.jsonl", FIRST_LOSS_TIMEOUT_S, before)
    if first is None:
        raise RuntimeError(f"no loss point within {FIRST_LOSS_TIMEOUT_S} s (status: {read_status(run)})")
    load = load_average()
    busy = latencies_ms(url, REQUESTS_QUICK if quick else REQUESTS)
    status = read_status(run).get("status")
    return {"idle_ms": idle, "training_ms": busy, "first_loss_s": first["time"] - job["submitted"],
            "first_loss_event": first, "before_first_loss": _timeline(before, job["submitted"]),
            "status_after": status, "load_average": load,
            "studio_peak_rss_mb": studio.peak_rss_mb(), "run": str(run)}


def _timeline(events: list[dict], submitted: float) -> list[str]:
    """"+4.2 s  Reading and checking the data." lines: when each step before the first loss began."""
    return [f"+{e['time'] - submitted:.1f} s  {e.get('message') or e.get('status', '')}" for e in events]


def run(quick: bool, model_home: str | None = None) -> dict:
    from .startup import Studio

    with scratch_dir("ui") as tmp:
        tmp = Path(tmp)
        home = cached_model_home(tmp, model_home)
        port = free_port()
        state = tmp / "state.json"
        studio = Studio(home, port, tmp / "studio.log",
                        command=[sys.executable, "-m", "bench.ui_load", "--serve", "--home", str(home),
                                 "--port", str(port), "--state", str(state)])
        studio.state = state
        try:
            start_s = studio.wait_http()
            result = measure(studio, quick)
        finally:
            studio.close()
    result["server_start_s"] = start_s
    return {"rows": _rows(result), "details": result}


def _rows(r: dict) -> list[dict]:
    busy, idle = r["training_ms"], r["idle_ms"]
    still = r["status_after"] == "training"
    when = "while training" if still else f"while training (the job was '{r['status_after']}' at the end)"
    rows = [
        row(SECTION, f"GET {ENDPOINT} p50 {when}", percentile(busy, 50), "ms",
            note=f"{len(busy)} sequential requests; load average {r['load_average']:.1f}"),
        row(SECTION, f"GET {ENDPOINT} p95 {when}", percentile(busy, 95), "ms", Target("<", P95_TARGET_MS),
            f"max {max(busy):.0f} ms"),
        row(SECTION, f"GET {ENDPOINT} p50 / p95 idle (same server)", percentile(idle, 95), "ms",
            note=f"p50 {median(idle):.0f} ms; value is p95; {len(idle)} requests before Start"),
        row(SECTION, "Start -> first loss point (model cached)", r["first_loss_s"], "s",
            Target("<", FIRST_LOSS_TARGET_S), _first_loss_note(r)),
    ]
    if r.get("studio_peak_rss_mb"):
        rows.append(row(SECTION, "studio peak RSS while training chat LoRA", r["studio_peak_rss_mb"], "MB",
                        Target("<=", PEAK_RSS_TARGET_MB), "UI + job in one process (VmHWM)"))
    return rows


def _first_loss_note(r: dict) -> str:
    first = r["first_loss_event"]
    training = first.get("train_elapsed_s")
    note = "default chat LoRA job, bundled chat example"
    if isinstance(training, (int, float)):
        note += f"; {r['first_loss_s'] - training:.1f} s preparing + {training:.1f} s to step {first.get('step')}"
    return note


def main(argv: list[str] | None = None) -> int:
    if "--serve" in (argv if argv is not None else sys.argv[1:]):
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("--serve", action="store_true")
        parser.add_argument("--home", required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--state", required=True)
        args = parser.parse_args(argv)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        serve(args.home, args.port, args.state)
        return 0

    return section_main(SECTION, run, argv, add_model_home_option)


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of every catalog strategy the memory estimate approves, measured against the estimate.

    .venv/bin/python -m bench.memory [--quick] [--json out.json] [--model-home HOME]

Each case is a whole job (data checks, presets, training, saving, the comparison with the base) run through
``core.engine.runner.run_job`` in a process of its own, as the studio runs a job; its peak resident memory comes
from ``wait4`` on that process. The estimate is the one the runner checked before training (``core.memory.estimate_job``
for the job's filled config on this machine, an image job's input side chosen from its data), kept in the run
folder's ``memory.json``. The goal: the estimate within 15 % of the measured peak for
every case it approves. Training is cut to a few steps (memory peaks in the first steps, the evaluation included);
``--quick`` runs one chat and one classifier case. While a case runs, its resident memory is sampled ten times a
second and laid against the run's phase events, so the table says which step of the job holds the peak (loading,
training, scoring the base, the forgetting probe...), and the JSON keeps each step's own peak.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import EXAMPLES, Target, failed_row, render_table, row, run_child, write_json

ESTIMATE_TOLERANCE = 0.15
CHAT_DATA = EXAMPLES / "kettlebird_support.csv"
TEXT_DATA = EXAMPLES / "support_tickets.csv"
IMAGE_DATA = EXAMPLES / "digits"

# (task, model, strategy, data, max steps): the packaged models, every strategy each allows.
CASES = (
    ("chat", "smollm2-135m-instruct", "lora", CHAT_DATA, 12),
    ("chat", "smollm2-135m-instruct", "qlora", CHAT_DATA, 12),
    ("chat", "smollm2-135m-instruct", "full", CHAT_DATA, 12),
    ("text-classification", "minilm-l6", "head-only", TEXT_DATA, None),
    ("text-classification", "minilm-l6", "lora", TEXT_DATA, 20),
    ("text-classification", "minilm-l6", "full", TEXT_DATA, 20),
    ("image-classification", "efficientnet-lite0", "head-only", IMAGE_DATA, None),
    ("image-classification", "efficientnet-lite0", "full", IMAGE_DATA, 20),
)
QUICK = (("chat", "lora"), ("text-classification", "head-only"))


def run_case(task: str, model: str, strategy: str, data: Path, steps: int | None, home: Path, out: Path) -> None:
    """(In the child process) run one job and write its run folder and estimate to ``out``."""
    from core.config import DataConfig, JobConfig, TrainConfig
    from core.engine.runner import run_job
    from core.hardware import detect_hardware
    from core.home import Home

    studio_home = Home.resolve(str(home))
    hardware = detect_hardware()
    config = JobConfig(task=task, model=model, strategy=strategy, data=DataConfig(path=str(data)),
                       train=TrainConfig(max_steps=steps), name=f"memory-{strategy}")
    run = run_job(config, studio_home, hardware=hardware)
    filled = JobConfig.load(run.config)
    estimate = json.loads(run.memory_estimate.read_text(encoding="utf-8"))  # what the runner checked
    write_json(out, {"run": str(run.path), "status": run.read_status().get("status"),
                     "estimate_gb": estimate["total_gb"], "fits": estimate["fits"],
                     "breakdown": estimate["breakdown"], "image_side": estimate["image_side"],
                     "batch_size": filled.train.batch_size, "max_length": filled.train.max_length,
                     "precision": filled.train.precision})


def measure(case: tuple, model_home: str | None, scratch: Path) -> dict:
    """Run ``case`` in its own process; its estimate, measured peak and their ratio."""
    task, model, strategy, data, steps = case
    home = scratch / f"home-{task}-{strategy}"
    home.mkdir(parents=True)
    if task == "chat":
        from core.home import Home

        from .common import link_chat_model
        link_chat_model(Home.resolve(str(home)), model_home, model, convert=True)
    out = scratch / f"{task}-{strategy}.json"
    command = [sys.executable, "-m", "bench.memory", "--case", f"{task}:{model}:{strategy}:{data}:{steps or 0}",
               "--home", str(home), "--json", str(out)]
    trace = RSSTrace()
    try:
        code, peak_mb, seconds = run_child(command, 1800, scratch / f"{task}-{strategy}.log", on_start=trace.start)
    finally:
        trace.stop()
    if code != 0:
        return {"task": task, "strategy": strategy, "error": f"exit {code} (log {scratch / f'{task}-{strategy}.log'})"}
    result = json.loads(out.read_text())
    result.update(task=task, model=model, strategy=strategy, peak_gb=round(peak_mb / 1024, 3),
                  seconds=round(seconds, 1), steps=trace.by_step(Path(result["run"]) / "metrics.jsonl"))
    result["estimate_over_peak"] = round(result["estimate_gb"] / result["peak_gb"], 3)
    return result


class RSSTrace:
    """A child process's resident memory, sampled every ``interval`` seconds from /proc while it runs."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (wall time, MB)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._watch, args=(pid,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, pid: int) -> None:
        status = Path(f"/proc/{pid}/status")
        while not self._done.is_set():
            try:
                text = status.read_text()
            except OSError:  # the child has exited (or this is not Linux)
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024))
                    break
            self._done.wait(self.interval)

    def by_step(self, metrics: Path) -> list[dict]:
        """Each step of the job (its phase events, in order) with the largest resident memory seen during it."""
        marks = [(0.0, "starting the process")]
        try:
            for line in metrics.read_text().splitlines():
                event = json.loads(line)
                if event.get("type") == "phase":
                    marks.append((float(event["time"]), str(event.get("message") or event.get("phase"))))
        except (OSError, ValueError, KeyError):
            pass
        steps: list[dict] = []
        k = 0
        for when, mb in self.samples:
            while k + 1 < len(marks) and marks[k + 1][0] <= when:
                k += 1
            if not steps or steps[-1]["index"] != k:
                steps.append({"index": k, "step": marks[k][1], "peak_gb": 0.0})
            steps[-1]["peak_gb"] = max(steps[-1]["peak_gb"], round(mb / 1024, 3))
        return [{"step": s["step"], "peak_gb": s["peak_gb"]} for s in steps]


def peak_step(steps: list[dict]) -> str:
    """The step that held the highest sampled memory, in words."""
    if not steps:
        return ""
    top = max(steps, key=lambda s: s["peak_gb"])
    return f"; peak while: {top['step'][:60]}"


def rows_of(results: list[dict]) -> list[dict]:
    """One table row per case: measured peak, with the estimate and its error in the note."""
    rows = []
    for r in results:
        name = f"{r['task'].replace('-classification', '')} {r['strategy']} ({r.get('model', '')})"
        if "error" in r:
            rows.append(failed_row("memory", f"{name}: {r['error']}"))
            continue
        error = r["estimate_gb"] / r["peak_gb"] - 1
        rows.append(row("memory", f"{name}: estimate / measured peak - 1", error, "",
                        Target("<=", ESTIMATE_TOLERANCE) if error >= 0 else Target(">=", -ESTIMATE_TOLERANCE),
                        f"estimate {r['estimate_gb']:.2f} GB, peak RSS {r['peak_gb']:.2f} GB (whole job: "
                        f"{r['seconds']:.0f} s; batch {r['batch_size']}, length {r['max_length']}, "
                        f"{r['precision']}{peak_step(r.get('steps') or [])})"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=None, metavar="TASK[:STRATEGY]",
                        help="the cases of one task, or one task and strategy (image-classification:full)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--model-home", default=None, help="a studio home with SmolLM2 converted")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the child: TASK:MODEL:STRATEGY:DATA:STEPS
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.case:
        task, model, strategy, data, steps = args.case.split(":", 4)
        run_case(task, model, strategy, Path(data), int(steps) or None, Path(args.home), args.json)
        return 0
    cases = [c for c in CASES if (not args.quick or (c[0], c[2]) in QUICK) and
             (not args.only or f"{c[0]}:{c[2]}" == args.only or c[0] == args.only)]
    if not cases:
        parser.error(f"no case matches --only {args.only}: the cases are "
                     + ", ".join(f"{c[0]}:{c[2]}" for c in CASES))
    with tempfile.TemporaryDirectory(prefix="studio-bench-memory-") as scratch:
        results = [measure(case, args.model_home, Path(scratch)) for case in cases]
    report = {"rows": rows_of(results), "details": {"cases": results}}
    print(render_table(report["rows"]))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

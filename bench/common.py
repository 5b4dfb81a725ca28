"""What every bench section shares: result rows with targets, the printed table, JSON, peak memory, timing
and running a section in its own process (so its peak RSS is its own and its failure is only its own).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"


@dataclass(frozen=True)
class Target:
    """A bound a number should meet: ``op`` is "<", "<=", ">" or ">=".

    Args:
        op: the comparison the value must pass.
        bound: the number it is compared with.
    """

    op: str
    bound: float

    def check(self, value: float) -> bool:
        return {"<": value < self.bound, "<=": value <= self.bound,
                ">": value > self.bound, ">=": value >= self.bound}[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


def row(section: str, metric: str, value, unit: str = "", target: Target | None = None, note: str = "") -> dict:
    """One line of the table. ``value`` is a number, or a string saying why there is none.

    Args:
        section: the bench section (ui, startup, data, inference, chat, classifiers).
        metric: what was measured.
        value: the number (or "failed: ...", "not available: ...", "skipped: ...").
        unit: its unit.
        target: the bound it should meet; the status is pass/miss when given.
        note: a short remark printed at the end of the line.
    """
    status = ""
    if isinstance(value, (int, float)) and target is not None:
        status = "pass" if target.check(value) else "miss"
    return {"section": section, "metric": metric, "value": value, "unit": unit,
            "target": str(target) if target else "", "status": status, "note": note}


def failed_row(section: str, reason: str) -> dict:
    """The row a section leaves when it could not run: the reason instead of a number."""
    return row(section, "(section)", f"failed: {reason}")


# --- measuring ----------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_peak_rss_mb(pid: int) -> float | None:
    """Another live process's peak resident memory (VmHWM), in MB; None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def timed() -> Iterator[dict]:
    """``with timed() as t: ...`` then ``t["s"]`` holds the seconds the block took."""
    box = {"s": None}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the nearest ranks."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> float:
    return os.getloadavg()[0]


# --- sections in their own process --------------------------------------------------------------------
def bench_env() -> dict:
    """The environment a section runs in: offline, the repository importable."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return env


def run_child(cmd: list[str], timeout: float, log: Path,
              on_start: Callable[[int], None] | None = None) -> tuple[int | None, float | None, float]:
    """Run ``cmd`` with stdout+stderr to ``log``; return (exit code or None on timeout, peak RSS MB, seconds).

    The peak RSS comes from ``wait4`` on the child, so it is that process's own (and its waited-for children's).
    ``on_start`` gets the child's pid as soon as it runs (to watch it while it works).
    """
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=bench_env(), cwd=ROOT,
                                start_new_session=True)
    if on_start is not None:
        on_start(proc.pid)
    try:
        return _wait(proc, start, timeout)
    except BaseException:  # Ctrl-C or SIGTERM of the bench: do not leave the section running on its own
        os.killpg(proc.pid, 9)
        proc.wait()
        raise


def _wait(proc: subprocess.Popen, start: float, timeout: float) -> tuple[int | None, float | None, float]:
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            os.killpg(proc.pid, 9)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, usage.ru_maxrss / 1024, time.perf_counter() - start
        time.sleep(0.2)


def last_error_line(log: Path) -> str:
    """The most telling line of a failed child's log: the last exception line, else the last line."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    for line in reversed(lines):
        if "Error" in line or "Exception" in line or line.startswith("failed"):
            return line[:200]
    return lines[-1][:200] if lines else "no output"


def run_module(module: str, args: list[str], timeout: float,
               scratch: Path) -> tuple[dict | None, str | None, float | None]:
    """Run ``python -m MODULE ARGS --json FILE``; return (its JSON, an error reason or None, peak RSS MB)."""
    name = module.rsplit(".", 1)[-1]
    out, log = scratch / f"{name}.json", scratch / f"{name}.log"
    code, peak, seconds = run_child([sys.executable, "-m", module, *args, "--json", str(out)], timeout, log)
    if code is None:
        return None, f"timed out after {seconds:.0f} s (log: {log})", peak
    if code != 0:
        return None, f"exit {code}: {last_error_line(log)} (log: {log})", peak
    try:
        return json.loads(out.read_text()), None, peak
    except (OSError, ValueError) as exc:
        return None, f"no JSON written ({exc})", peak


# --- the table ------------------------------------------------------------------------------------------
def format_value(value, unit: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value == 0 or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def _cells(r: dict) -> tuple[str, ...]:
    value, note = format_value(r["value"], r["unit"]), r["note"]
    if isinstance(r["value"], str) and ": " in value and len(value) > 20:
        value, reason = value.split(": ", 1)  # the reason is long: it reads better at the end of the line
        note = f"{reason} {note}".strip()
    target = f"{r['target']} {r['unit']}".strip() if r["target"] else ""
    return r["section"], r["metric"], value, target, r["status"], note


def render_table(rows: list[dict]) -> str:
    """The rows as an aligned text table (section, metric, value, target, pass/miss, note)."""
    header = ("section", "metric", "value", "target", "status", "note")
    cells = [header] + [_cells(r) for r in rows]
    widths = [min(max(len(c[i]) for c in cells), 60) for i in range(len(header) - 1)]
    lines = []
    for c in cells:
        lines.append("  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1])
        if c is header:
            lines.append("-" * (sum(widths) + 2 * len(widths) + 4))
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")


# --- one section's command line -------------------------------------------------------------------------
def section_main(section: str, run: Callable[[bool], dict], argv: list[str] | None = None,
                 extra: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """The command line every section module has: ``--quick``, ``--json PATH``; prints its rows.

    Args:
        section: the section's name.
        run: ``run(quick) -> {"rows": [...], "details": {...}}``.
        argv: the arguments (sys.argv when None).
        extra: adds section-specific arguments; they are passed on as keyword arguments to ``run``.
    """
    parser = argparse.ArgumentParser(prog=f"python -m bench.{section}")
    parser.add_argument("--quick", action="store_true", help="the smallest setting (for the smoke test)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    if extra:
        extra(parser)
    args = vars(parser.parse_args(argv))
    quick, json_path = args.pop("quick"), args.pop("json")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(quick, **args)
    result.setdefault("details", {})["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(render_table(result["rows"]))
    if json_path:
        write_json(json_path, result)
    return 0


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"studio-bench-{prefix}-")


def add_model_home_option(parser: argparse.ArgumentParser) -> None:
    """The sections that run SmolLM2 take the home of an already converted copy (conversion is timed once)."""
    parser.add_argument("--model-home", default=None,
                        help="a studio home with SmolLM2 converted (default $STUDIO_HOME or ~/.finetune-studio)")


def link_chat_model(home, model_home: str | None, name: str, convert: bool) -> bool:
    """Link ``home``'s cache entry for chat model ``name`` to the converted copy in ``model_home``.

    Args:
        home: the fresh ``core.home.Home`` a section works in.
        model_home: the home holding the converted model (default: the user's studio home).
        name: the catalog key.
        convert: convert it there first when it is missing; otherwise link only when present.
    Returns whether a link was made.
    """
    from core.home import Home
    from core.models import resolve_model

    source_home = Home.resolve(model_home)
    if convert:
        source = resolve_model(name, source_home, task="chat").path
    else:
        source = source_home.models / name
        if not (source / "config.json").is_file():
            return False
    (home.models / name).symlink_to(Path(source).resolve(), target_is_directory=True)
    return True

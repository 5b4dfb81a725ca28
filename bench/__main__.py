"""``python -m bench``: every benchmark section, each in its own process, in one table with the issue's targets.

    .venv/bin/python -m bench [--quick] [--only ui,startup,data,inference,chat,memory,classifiers] [--json PATH]
    .venv/bin/python -m bench --gpu        (on a machine with a CUDA GPU; bench/gpu_check.sh runs it with the tests)

A section runs as ``python -m bench.<module> ... --json FILE``; its peak RSS comes from ``wait4`` on that
process, and a section that fails or times out leaves "failed: reason" in the table while the others go on.
The numbers are measured by this script on this machine, never by timed tests; on a shared machine they are
pessimistic, and ratios measured side by side in one process (chat ours vs reference, cached vs uncached
epochs) are what to compare.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .common import EXAMPLES, ROOT, Target, failed_row, render_table, row, run_module, write_json

DEFAULT_JSON = ROOT / "bench" / "results.json"
CHAT_SPEEDUP_TARGET = 2.0
MFU_TARGET = 0.35
PEAK_RSS_TARGET_MB = 3 * 1024.0
CACHED_SPEEDUP_TARGET = 20.0
DIGITS_ACCURACY_TARGET = 0.9
DIGITS_SECONDS_TARGET = 30.0


@dataclass(frozen=True)
class Section:
    """One bench section: the module it runs, its arguments (full and --quick) and how its JSON becomes rows."""

    name: str
    module: str
    args: Callable[[argparse.Namespace], list[str]]
    timeout_s: float
    quick_timeout_s: float
    to_rows: Callable[[dict], list[dict]] = field(default=lambda result: result["rows"])


# --- the sections whose JSON is their own (bench/chat_lora.py, bench/classifiers.py, bench/memory.py) ----
def chat_rows(report: dict) -> list[dict]:
    """Rows from ``bench.chat_lora``'s JSON: the issue's figures, each with its goal where it has one."""
    by = {r["recipe"]: r for r in report["results"]}
    ours, ref = by.get("ours"), by.get("reference")
    if ours is None:
        return [failed_row("chat", "bench.chat_lora reported no 'ours' recipe")]
    precision = ours.get("precision", "fp32")
    setting = (f"{report['rows']} rows, batch {report['batch']}, r={report['rank']}, {report['threads']} threads, "
               f"{report.get('rounds', 1)} round(s)")
    path = "compiled layers" if ours.get("compiled") else "eager, fused LoRA" if ours.get("fused") else "eager"
    rows = [row("chat", "chat LoRA default recipe: useful tokens/s", ours["tokens_per_s"], "tokens/s",
                note=f"{precision} (the studio's choice on this CPU), {path}; {ours['s_per_step']:.2f} s/step; "
                     f"{setting}")]
    if ref is not None:
        rows.append(row("chat", "chat LoRA peer recipe (fp32): useful tokens/s", ref["tokens_per_s"], "tokens/s",
                        note="plain Trainer + peft LoRA in fp32, dynamic padding, loss on all tokens"))
        rows.append(row("chat", "chat LoRA default recipe / peer recipe (fp32)", ours["tokens_per_s"]
                        / ref["tokens_per_s"], "x", Target(">=", CHAT_SPEEDUP_TARGET),
                        f"ours: {precision}, {path} (the default once this machine's kernels are cached); same "
                        "process, data, batch, rank and threads, ABBA rounds"))
        eager = by.get("ours-eager")
        if eager is not None:
            rows.append(row("chat", "chat LoRA first run on a machine (eager, fused) / peer recipe",
                            eager["tokens_per_s"] / ref["tokens_per_s"], "x",
                            note="the default before the kernels are built (the run then builds them in the "
                                 "background for the next)"))
        rows += _equal_precision_rows(by, ref)
    rows += _mfu_rows(report, ours, precision)
    rows += _compile_rows(report, by)
    unfused, eager = by.get("ours-unfused"), by.get("ours-eager")
    if unfused is not None and eager is not None:
        rows.append(row("chat", "fused LoRA projections: eager tokens/s with / without", eager["tokens_per_s"]
                        / unfused["tokens_per_s"], "x", note="one matmul per group sharing an input (q/k/v, "
                        "gate/up), hand-written backward; kept only if above 1"))
    rows.append(row("chat", "chat LoRA default recipe: peak RSS (shared bench process)", ours["peak_rss_gb"] * 1024,
                    "MB", note="sampled every 20 ms in a process that also ran the other recipes; the job's own "
                               "peak is the memory section's"))
    return rows


def _equal_precision_rows(by: dict, ref: dict) -> list[dict]:
    rows = []
    pairs = (("ours", "reference-bf16", "both bf16", "ours default / peer recipe, both bf16: the recipe's own gain"),
             ("ours-fp32", "reference", "both fp32", "ours eager in fp32 / peer recipe in fp32"),
             ("ours-fp32-compiled", "reference", "fp32 + compile", "ours in fp32, compiled / peer recipe in fp32"),
             ("ours-compiled", "reference", "bf16 + compile", "ours in bf16, compiled / peer recipe in fp32"))
    for mine, theirs, label, note in pairs:
        if mine in by and theirs in by:
            rows.append(row("chat", f"chat LoRA {label}", by[mine]["tokens_per_s"] / by[theirs]["tokens_per_s"],
                            "x", note=note))
    return rows


def _mfu_rows(report: dict, ours: dict, precision: str) -> list[dict]:
    own = report.get("matmul_gflops_" + precision, report["matmul_gflops"])
    rows = [row("chat", f"chat LoRA default recipe: MFU against the {precision} matmul rate", ours["mfu_4N"], "",
                Target(">=", MFU_TARGET), f"4 x params x useful tokens/s / {max(own):.0f} GFLOP/s "
                f"({'/'.join(f'{g:.0f}' for g in own)} before/after; fp32 "
                f"{'/'.join(f'{g:.0f}' for g in report['matmul_gflops'])})")]
    return rows


def _compile_rows(report: dict, by: dict) -> list[dict]:
    even = report.get("break_even") or {}
    if not even:
        return []
    rows = [row("chat", "compiling pays after (kernels cached)", even.get("warm_micro_batches", "not measured"),
                "micro-batches", note=f"{even.get('warm_compile_extra_s', float('nan')):.0f} s extra in a new process "
                f"with the kernel cache warm; saves {even['saved_s_per_micro_batch']:.2f} s a micro-batch"),
            row("chat", "compiling pays after (cold kernel cache)", even["cold_micro_batches"], "micro-batches",
                note=f"{even['cold_compile_extra_s']:.0f} s extra the first time on this machine")]
    return rows


def memory_rows(report: dict) -> list[dict]:
    """Rows from ``bench.memory``: the default chat job's peak RSS against its goal, then every case's estimate."""
    rows = []
    for case in report["details"]["cases"]:
        if case.get("task") == "chat" and case.get("strategy") == "lora" and "peak_gb" in case:
            rows.append(row("memory", "default chat job (LoRA, SmolLM2): peak RSS", case["peak_gb"] * 1024, "MB",
                            Target("<=", PEAK_RSS_TARGET_MB), "the whole job in its own process: load, train, save, "
                            "compare with the base"))
    return rows + report["rows"]


def classifier_rows(report: dict) -> list[dict]:
    """Rows from ``bench.classifiers``'s JSON: cached vs uncached epochs, end-to-end time and accuracy."""
    rows = []
    for r in report["results"]:
        name = "digits" if r["task"] == "image-classification" else "text"
        digits = name == "digits"
        rows.append(row("classifiers", f"{name} head-only: uncached / cached epoch", r["speedup"], "x",
                        Target(">=", CACHED_SPEEDUP_TARGET),
                        f"{r['cached_epoch_s'] * 1000:.1f} ms cached vs {r['uncached_epoch_s']:.2f} s re-running "
                        f"{r['model']}"))
        rows.append(row("classifiers", f"{name} head-only: end to end", r["end_to_end_s"], "s",
                        Target("<", DIGITS_SECONDS_TARGET) if digits else None,
                        f"{r['train_examples']} train / {r['validation_examples']} validation examples"))
        baselines = ", ".join(f"{k} {v:.2f}" for k, v in r.get("baselines", {}).items())
        rows.append(row("classifiers", f"{name} head-only: accuracy", r["accuracy"], "",
                        Target(">", DIGITS_ACCURACY_TARGET) if digits else None, f"baselines: {baselines}"))
        wide = r.get("wide_fit")
        if wide:
            rows.append(row("classifiers", "text head fit on network + TF-IDF: dense / split", wide["speedup"], "x",
                            None, f"{wide['rows']} rows x {wide['columns']} columns: {wide['dense_s']:.3f} s dense, "
                            f"{wide['split_s']:.3f} s through the sparse split (fitting.Rows)"))
    return rows


def _home_args(args: argparse.Namespace) -> list[str]:
    return ["--model-home", args.model_home] if args.model_home else []


def _quick(args: argparse.Namespace) -> list[str]:
    return ["--quick"] if args.quick else []


SECTIONS = (
    Section("startup", "bench.startup", _quick, 900, 300),
    Section("ui", "bench.ui_load", lambda a: _quick(a) + _home_args(a), 900, 300),
    Section("data", "bench.data_scale", _quick, 1200, 300),
    Section("inference", "bench.inference", lambda a: _quick(a) + _home_args(a), 900, 300),
    Section("chat", "bench.chat_lora",
            lambda a: (["--steps", "1", "--warmup", "1", "--rows", "8"] if a.quick
                       else ["--recipes", "ours,ours-compiled,ours-eager,ours-unfused,ours-fp32,ours-fp32-compiled,"
                             "reference,reference-bf16", "--warmup", "5", "--steps", "15", "--rounds", "2",
                             "--warm-compile"])
            + (["--home", a.model_home] if a.model_home else []), 3000, 600, chat_rows),
    Section("memory", "bench.memory", lambda a: _quick(a) + _home_args(a), 3000, 900, memory_rows),
    Section("gpu", "bench.gpu", _quick, 600, 300, lambda result: result["rows"]),
    Section("classifiers", "bench.classifiers",
            lambda a: ["--digits", str(EXAMPLES / "digits"), "--text", str(EXAMPLES / "support_tickets.csv")]
            + (["--preset", "quick"] if a.quick else []), 1200, 600, classifier_rows),
)
NAMES = tuple(s.name for s in SECTIONS)


def run_section(section: Section, args: argparse.Namespace, scratch: Path) -> dict:
    """Run one section in its own process; its rows (or a failed row), peak RSS and wall time."""
    started = time.perf_counter()
    folder = scratch / section.name
    folder.mkdir()
    timeout = section.quick_timeout_s if args.quick else section.timeout_s
    result, error, peak = run_module(section.module, section.args(args), timeout, folder)
    seconds = time.perf_counter() - started
    rows = [failed_row(section.name, error)] if error else None
    if rows is None:
        try:
            rows = section.to_rows(result)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            rows = [failed_row(section.name, f"could not read its JSON ({exc!r})")]
    rows.append(row(section.name, "(section) peak RSS of its process", peak, "MB", note=f"ran {seconds:.0f} s"))
    return {"rows": rows, "details": (result or {}).get("details", result), "error": error,
            "peak_rss_mb": peak, "seconds": round(seconds, 1)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps (the smoke test)")
    parser.add_argument("--only", default=None, help=f"comma list of sections: {', '.join(NAMES)}")
    parser.add_argument("--gpu", action="store_true", help="the GPU section alone (QLoRA and LoRA on a 1B and a "
                        "7B-class model, ours against Trainer + peft; needs a CUDA GPU)")
    parser.add_argument("--json", type=Path, default=None, help=f"where to write the results (default "
                        f"{DEFAULT_JSON.relative_to(ROOT)}, or bench/results-gpu.json with --gpu)")
    parser.add_argument("--model-home", default=None,
                        help="a studio home holding the converted SmolLM2 (default $STUDIO_HOME or "
                             "~/.finetune-studio; converted there once if missing)")
    args = parser.parse_args(argv)
    default = ",".join(n for n in NAMES if n != "gpu")  # the GPU section runs with --gpu (or --only gpu)
    wanted = [s.strip() for s in (args.only or ("gpu" if args.gpu else default)).split(",") if s.strip()]
    args.json = args.json or (DEFAULT_JSON.with_name("results-gpu.json") if wanted == ["gpu"] else DEFAULT_JSON)
    unknown = [s for s in wanted if s not in NAMES]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(NAMES)}")
    args.sections = [s for s in SECTIONS if s.name in wanted]
    return args


def machine() -> dict:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "load_average_start": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the running section is killed with us
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick, "machine": machine(),
              "sections": {}, "rows": []}
    scratch = tempfile.mkdtemp(prefix="studio-bench-")  # kept: each section's log, for the failures
    report["logs"] = scratch
    if True:
        for section in args.sections:
            print(f"[bench] {section.name} ...", file=sys.stderr, flush=True)
            result = run_section(section, args, Path(scratch))
            report["sections"][section.name] = result
            report["rows"] += result["rows"]
            print(f"[bench] {section.name} done in {result['seconds']:.0f} s"
                  + (f": {result['error']}" if result["error"] else ""), file=sys.stderr, flush=True)
    report["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
    print(render_table(report["rows"]))
    m = report["machine"]
    print(f"\n{m['cores']} cores; load average {m['load_average_start']} at the start, {m['load_average_end']} "
          "at the end (other work on the machine makes absolute times pessimistic; side-by-side ratios hold).")
    write_json(args.json, report)
    print(f"written to {args.json}; section logs in {scratch}")
    return 0 if not any(r["section"] and str(r["value"]).startswith("failed") for r in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())

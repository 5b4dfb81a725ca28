"""The bench's plumbing, and a smoke run of each of its sections at the smallest setting.

Nothing here asserts on speed: the numbers come from ``python -m bench``; these tests only check that each
section runs and yields numbers (or says honestly why a part is not available).
"""
import json
import subprocess
import sys

import pytest

from bench import common
from bench.__main__ import chat_rows, classifier_rows, memory_rows, parse
from bench.common import Target, percentile, render_table, row, run_module

REPO = common.ROOT


def test_target_and_status():
    assert row("ui", "p95", 120.0, "ms", Target("<", 250))["status"] == "pass"
    assert row("ui", "p95", 300.0, "ms", Target("<", 250))["status"] == "miss"
    assert row("chat", "x ref", 1.5, "x", Target(">=", 1.5))["status"] == "pass"
    assert row("ui", "p95", "failed: boom", "ms", Target("<", 250))["status"] == ""


def test_percentile_interpolates():
    values = list(range(1, 101))
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_table_moves_long_reasons_to_the_note():
    table = render_table([row("data", "load", 1.234, "s", Target("<", 10)),
                          row("chat", "speed", "failed: exit 1: RuntimeError: out of memory")])
    lines = table.splitlines()
    assert lines[0].split() == ["section", "metric", "value", "target", "status", "note"]
    assert "1.23 s" in lines[2] and "pass" in lines[2]
    assert "failed" in lines[3] and lines[3].rstrip().endswith("RuntimeError: out of memory")


def test_failing_module_gives_a_reason(tmp_path):
    result, error, peak = run_module("bench.no_such_section", [], 60, tmp_path)
    assert result is None
    assert error.startswith("exit 1") and "No module named" in error
    assert peak > 0


def test_only_rejects_unknown_sections():
    assert [s.name for s in parse(["--only", "data,ui"]).sections] == ["ui", "data"]
    assert [s.name for s in parse(["--only", "memory"]).sections] == ["memory"]
    with pytest.raises(SystemExit):
        parse(["--only", "nope"])


def test_other_helpers_json_becomes_rows():
    def recipe(name, precision, tokens_per_s, mfu=0.3, **extra):
        return {"recipe": name, "precision": precision, "tokens_per_s": tokens_per_s, "s_per_step": 1.0,
                "mfu_4N": mfu, "peak_rss_gb": 2.0, "warmup_s": 5.0, **extra}

    chat = {"rows": 24, "batch": 4, "rank": 8, "threads": 2, "matmul_gflops": [100.0, 90.0],
            "matmul_gflops_bf16": [300.0, 280.0], "rounds": 2, "warmup": 5, "compile_cache_warm": False,
            "break_even": {"saved_s_per_micro_batch": 0.4, "cold_compile_extra_s": 60.0, "cold_micro_batches": 150,
                           "warm_compile_extra_s": 6.0, "warm_micro_batches": 15},
            "results": [recipe("ours", "bf16", 420.0, 0.36, compiled=True), recipe("ours-eager", "bf16", 300.0),
                        recipe("ours-unfused", "bf16", 250.0), recipe("ours-fp32", "fp32", 180.0),
                        recipe("reference", "fp32", 150.0), recipe("reference-bf16", "bf16", 200.0),
                        recipe("ours-fp32-compiled", "fp32", 210.0), recipe("ours-compiled", "bf16", 420.0)]}
    rows = {r["metric"]: r for r in chat_rows(chat)}
    headline = rows["chat LoRA default recipe / peer recipe (fp32)"]
    assert headline["value"] == pytest.approx(2.8) and headline["status"] == "pass" and headline["target"] == ">= 2"
    assert "compiled layers" in headline["note"] and "bf16" in headline["note"]
    assert rows["chat LoRA first run on a machine (eager, fused) / peer recipe"]["value"] == pytest.approx(2.0)
    assert rows["chat LoRA both bf16"]["value"] == pytest.approx(2.1)
    assert rows["chat LoRA both fp32"]["value"] == pytest.approx(1.2)
    assert rows["chat LoRA fp32 + compile"]["value"] == pytest.approx(1.4)
    assert rows["chat LoRA bf16 + compile"]["value"] == pytest.approx(2.8)
    mfu = rows["chat LoRA default recipe: MFU against the bf16 matmul rate"]
    assert mfu["value"] == pytest.approx(0.36) and mfu["status"] == "pass" and "300/280" in mfu["note"]
    assert rows["compiling pays after (kernels cached)"]["value"] == 15
    assert rows["compiling pays after (cold kernel cache)"]["value"] == 150
    assert rows["fused LoRA projections: eager tokens/s with / without"]["value"] == pytest.approx(1.2)
    slow = dict(chat, results=[recipe("ours", "bf16", 240.0), recipe("reference", "fp32", 150.0)], break_even={})
    slow_rows = {r["metric"]: r for r in chat_rows(slow)}
    assert slow_rows["chat LoRA default recipe / peer recipe (fp32)"]["status"] == "miss"
    assert "compiling pays after (cold kernel cache)" not in slow_rows  # not measured in this report
    memory = {"rows": [row("memory", "chat lora: estimate / measured peak - 1", 0.05, "", Target("<=", 0.15))],
              "details": {"cases": [{"task": "chat", "strategy": "lora", "peak_gb": 2.5}]}}
    by_metric = {r["metric"]: r for r in memory_rows(memory)}
    peak = by_metric["default chat job (LoRA, SmolLM2): peak RSS"]
    assert peak["value"] == pytest.approx(2560) and peak["status"] == "pass"
    classifiers = {"results": [{"task": "image-classification", "model": "efficientnet-lite0", "speedup": 10.0,
                                "cached_epoch_s": 0.01, "uncached_epoch_s": 0.1, "end_to_end_s": 20.0,
                                "train_examples": 400, "validation_examples": 100, "accuracy": 0.95,
                                "baselines": {"majority": 0.1}}]}
    status = {r["metric"]: r["status"] for r in classifier_rows(classifiers)}
    assert status == {"digits head-only: uncached / cached epoch": "miss", "digits head-only: end to end": "pass",
                      "digits head-only: accuracy": "pass"}


def test_memory_trace_names_the_step_that_held_the_peak(tmp_path):
    """The memory bench lays its RSS samples against the run's phase events: each step's own peak, in order."""
    from bench.memory import RSSTrace, peak_step

    metrics = tmp_path / "metrics.jsonl"
    events = [{"type": "status", "time": 100.0}, {"type": "phase", "time": 101.0, "message": "Loading the model"},
              {"type": "train", "time": 102.5}, {"type": "phase", "time": 103.0, "message": "Training on 8 rows"},
              {"type": "phase", "time": 106.0, "message": "Comparing the base and the tuned model"}]
    metrics.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    trace = RSSTrace()
    trace.samples = [(100.5, 500.0), (101.5, 1200.0), (102.9, 900.0), (104.0, 2048.0), (105.0, 1800.0),
                     (106.5, 1500.0)]
    steps = trace.by_step(metrics)
    assert [s["step"] for s in steps] == ["starting the process", "Loading the model", "Training on 8 rows",
                                          "Comparing the base and the tuned model"]
    assert [s["peak_gb"] for s in steps] == [pytest.approx(500 / 1024, abs=1e-3), pytest.approx(1200 / 1024, abs=1e-3),
                                             2.0, pytest.approx(1500 / 1024, abs=1e-3)]
    assert peak_step(steps) == "; peak while: Training on 8 rows"
    assert trace.by_step(tmp_path / "missing.jsonl")[0]["step"] == "starting the process"  # no events: one step


def test_memory_trace_samples_a_real_child(tmp_path):
    from bench.memory import RSSTrace

    trace = RSSTrace(interval=0.05)
    code, peak_mb, _ = common.run_child([sys.executable, "-c", "import time; b = bytearray(64 << 20); time.sleep(1)"],
                                        30, tmp_path / "child.log", on_start=trace.start)
    trace.stop()
    assert code == 0 and trace.samples
    assert max(mb for _, mb in trace.samples) > 60 and max(mb for _, mb in trace.samples) <= peak_mb + 1
    assert all(a[0] <= b[0] for a, b in zip(trace.samples, trace.samples[1:]))


def _run_section(module: str, tmp_path, *extra: str) -> list[dict]:
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", module, "--quick", "--json", str(out), *extra], cwd=REPO,
                          env=common.bench_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    failed = [r for r in rows if str(r["value"]).startswith("failed")]
    assert not failed, failed
    assert any(isinstance(r["value"], (int, float)) and r["value"] > 0 for r in rows), rows
    return rows


@pytest.mark.slow
def test_data_scale_quick(tmp_path):
    rows = _run_section("bench.data_scale", tmp_path)
    assert any(r["metric"].startswith("load_data: 2,000 CSV rows") for r in rows)
    assert any(r["metric"].startswith("load_data: 200 images") for r in rows)


@pytest.mark.slow
def test_startup_quick(tmp_path):
    rows = _run_section("bench.startup", tmp_path)
    assert isinstance(next(r for r in rows if r["metric"].startswith("cold start"))["value"], float)


@pytest.mark.slow
def test_ui_load_quick(tmp_path, packaged_home):
    rows = {r["metric"]: r for r in _run_section("bench.ui_load", tmp_path, "--model-home", str(packaged_home.root))}
    assert rows["Start -> first loss point (model cached)"]["value"] > 0
    assert any("p95" in name and isinstance(r["value"], float) for name, r in rows.items())


@pytest.mark.slow
def test_inference_quick(tmp_path, packaged_home):
    rows = _run_section("bench.inference", tmp_path, "--model-home", str(packaged_home.root))
    latencies = [r for r in rows if "classification: one prediction" in r["metric"]]
    assert len(latencies) == 2 and all(r["value"] > 0 for r in latencies)

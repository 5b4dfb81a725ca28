"""The bench's plumbing, and a smoke run of each of its sections at the smallest setting.

Nothing here asserts on speed: the numbers come from ``python -m bench``; these tests only check that each
section runs and yields numbers (or says honestly why a part is not available).
"""
import json
import subprocess
import sys

import pytest

from bench import common
from bench.__main__ import chat_rows, classifier_rows, parse
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
    with pytest.raises(SystemExit):
        parse(["--only", "nope"])


def test_other_helpers_json_becomes_rows():
    chat = {"rows": 24, "batch": 4, "rank": 8, "threads": 2, "matmul_gflops": [100.0, 90.0],
            "matmul_gflops_bf16": [300.0, 280.0], "rounds": 2, "results": [
        {"recipe": "ours", "precision": "bf16", "tokens_per_s": 300.0, "s_per_step": 1.0, "mfu_4N": 0.55,
         "mfu_4N_fp32_peak": 1.6, "peak_rss_gb": 2.0, "warmup_s": 5.0},
        {"recipe": "ours-fp32", "precision": "fp32", "tokens_per_s": 180.0, "s_per_step": 1.6, "mfu_4N": 0.52,
         "peak_rss_gb": 2.5, "warmup_s": 5.0},
        {"recipe": "reference", "precision": "fp32", "tokens_per_s": 150.0, "s_per_step": 2.0, "mfu_4N": 0.3,
         "peak_rss_gb": 2.5, "warmup_s": 6.0},
        {"recipe": "reference-bf16", "precision": "bf16", "tokens_per_s": 200.0, "s_per_step": 1.5,
         "mfu_4N": 0.2, "peak_rss_gb": 2.5, "warmup_s": 6.0},
        {"recipe": "ours-fp32-compiled", "precision": "fp32", "tokens_per_s": 200.0, "s_per_step": 1.5,
         "mfu_4N": 0.65, "peak_rss_gb": 2.0, "warmup_s": 130.0}], "warmup": 5, "compile_cache_warm": False}
    rows = {r["metric"]: r for r in chat_rows(chat)}
    compiled = rows["chat LoRA ours in fp32 + torch.compile / reference"]
    assert compiled["value"] == pytest.approx(200 / 150) and compiled["status"] == "miss"
    assert "125 s more" in compiled["note"] and "cold" in compiled["note"] and "1.11x eager" in compiled["note"]
    assert rows["chat LoRA ours / reference"]["value"] == pytest.approx(2.0)
    headline = rows["chat LoRA ours / reference"]
    assert headline["status"] == "pass" and "bf16" in headline["note"]
    assert rows["chat LoRA ours / reference, both bf16"]["value"] == pytest.approx(1.5)
    assert rows["chat LoRA ours in fp32 / reference"]["value"] == pytest.approx(1.2)
    assert rows["chat LoRA ours in fp32 / reference"]["status"] == "miss"
    mfu = rows["chat LoRA ours: MFU (4N)"]
    assert mfu["value"] == pytest.approx(1.6)
    assert "0.55 against the bf16 rate" in mfu["note"] and "300/280" in mfu["note"]
    assert rows["chat LoRA ours in fp32: MFU (4N)"]["value"] == pytest.approx(0.52)
    assert "chat LoRA ours + torch.compile / reference" not in rows  # not in this report
    assert rows["chat LoRA ours: peak RSS"]["value"] == pytest.approx(2048)
    classifiers = {"results": [{"task": "image-classification", "model": "efficientnet-lite0", "speedup": 10.0,
                                "cached_epoch_s": 0.01, "uncached_epoch_s": 0.1, "end_to_end_s": 20.0,
                                "train_examples": 400, "validation_examples": 100, "accuracy": 0.95,
                                "baselines": {"majority": 0.1}}]}
    status = {r["metric"]: r["status"] for r in classifier_rows(classifiers)}
    assert status == {"digits head-only: uncached / cached epoch": "miss", "digits head-only: end to end": "pass",
                      "digits head-only: accuracy": "pass"}


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

"""Inference in the playground: chat time to first token and tokens/s (``core.inference.chat``), and the latency
of one text and one image classification (``core.inference.classify.Classifier``) from quickly trained head-only
runs (the bundled support tickets; the bundled digits).

    .venv/bin/python -m bench.inference [--quick] [--json out.json] [--model-home DIR]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .common import (EXAMPLES, add_model_home_option, link_chat_model, median, percentile, row, scratch_dir,
                     section_main, timed)

SECTION = "inference"
CHAT_MODEL = "smollm2-135m-instruct"
PREDICTIONS, PREDICTIONS_QUICK = 30, 5
CHAT_TOKENS, CHAT_TOKENS_QUICK = 64, 16
CHAT_PROMPT = "My kettle switches itself off before the water boils. What should I check?"
CLASSIFIERS = (
    ("text-classification", "minilm-l6", EXAMPLES / "support_tickets.csv"),
    ("image-classification", "efficientnet-lite0", EXAMPLES / "digits"),
)


# --- classifiers ---------------------------------------------------------------------------------------
def train_head(task: str, model: str, data: Path, home) -> tuple[Path, float]:
    """A quick head-only run through the real runner; its folder and the seconds it took."""
    from core.config import DataConfig, JobConfig, TrainConfig
    from core.engine.runner import run_job

    config = JobConfig(task=task, model=model, strategy="head-only", data=DataConfig(path=str(data)),
                       train=TrainConfig(preset="quick"), name=f"bench-{task}")
    with timed() as t:
        run = run_job(config, home)
    return run.path, t["s"]


def sample_item(task: str, data: Path):
    """A text from the example file, or the first image of the digits."""
    if task == "text-classification":
        import csv

        with open(data, newline="", encoding="utf-8") as f:
            return next(csv.DictReader(f))["text"]
    return str(sorted(data.rglob("*.png"))[0])


def classify_latency(task: str, model: str, data: Path, home, count: int) -> dict:
    """First prediction (loads the model) and then ``count`` warm ones, tuned head, in ms."""
    from core.inference.classify import Classifier

    run, train_s = train_head(task, model, data, home)
    classifier = Classifier.from_run(run, home)
    item = sample_item(task, data)
    with timed() as first:
        top = classifier.predict(item)[0]
    warm = []
    for _ in range(count):
        with timed() as t:
            classifier.predict(item)
        warm.append(t["s"] * 1000)
    return {"task": task, "model": model, "train_s": train_s, "first_ms": first["s"] * 1000, "warm_ms": warm,
            "top": top}


# --- chat -----------------------------------------------------------------------------------------------
def chat_speed(home, max_tokens: int) -> dict:
    """Load the base SmolLM2 into ``core.inference.chat.ChatModel`` and stream one greedy answer: the load time,
    the time to the first streamed text and the tokens/s after it (tokens counted with the model's tokenizer)."""
    try:
        from core.inference.chat import ChatModel
    except ImportError as exc:
        raise LookupError(f"core.inference.chat.ChatModel is not importable ({exc})") from None

    with timed() as load:
        chat = ChatModel.from_base(CHAT_MODEL, home)
    messages = [{"role": "user", "content": CHAT_PROMPT}]
    start = time.perf_counter()
    first, answer = None, ""
    for answer in chat.stream(messages, use_tuned=False, max_new_tokens=max_tokens, temperature=0.0):
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    tokens = len(chat.tokenizer(answer, add_special_tokens=False)["input_ids"])
    return {"load_s": load["s"], "ttft_s": first, "tokens": tokens, "total_s": total,
            "tokens_per_s": (tokens - 1) / (total - first) if first is not None and tokens > 1 else None,
            "answer": answer}


# --- the section ------------------------------------------------------------------------------------------
def run(quick: bool, model_home: str | None = None) -> dict:
    from core.home import Home

    rows, details = [], {}
    with scratch_dir("inference") as tmp:
        home = Home.resolve(tmp)
        link_chat_model(home, model_home, CHAT_MODEL, convert=False)
        try:
            details["chat"] = c = chat_speed(home, CHAT_TOKENS_QUICK if quick else CHAT_TOKENS)
            rows.append(row(SECTION, "chat: time to first token (base SmolLM2)", c["ttft_s"], "s",
                            note=f"model loaded in {c['load_s']:.1f} s before (not counted)"))
            rows.append(row(SECTION, "chat: tokens/s after the first", c["tokens_per_s"], "tokens/s",
                            note=f"{c['tokens']} tokens in {c['total_s']:.1f} s, greedy"))
        except LookupError as exc:
            rows.append(row(SECTION, "chat: time to first token, tokens/s", f"not available: {exc}"))
        except Exception as exc:  # keep the classifier numbers when the chat part breaks
            rows.append(row(SECTION, "chat: time to first token, tokens/s", f"failed: {exc}"[:200]))
        for task, model, data in CLASSIFIERS:
            name = task.split("-")[0]
            try:
                details[task] = r = classify_latency(task, model, data, home, PREDICTIONS_QUICK if quick
                                                     else PREDICTIONS)
            except Exception as exc:
                rows.append(row(SECTION, f"{name} classification latency", f"failed: {exc}"[:200]))
                continue
            rows.append(row(SECTION, f"{name} classification: one prediction, warm (p50)", median(r["warm_ms"]),
                            "ms", note=f"p95 {percentile(r['warm_ms'], 95):.0f} ms; {model} head-only"))
            rows.append(row(SECTION, f"{name} classification: first prediction (loads model)", r["first_ms"],
                            "ms", note=f"quick head-only run trained in {r['train_s']:.1f} s"))
    return {"rows": rows, "details": details}


def main(argv: list[str] | None = None) -> int:
    return section_main(SECTION, run, argv, add_model_home_option)


if __name__ == "__main__":
    sys.exit(main())

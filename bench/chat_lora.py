"""Chat LoRA speed: our recipe against the plain recipe peers ship, in one process, on the same data.

Ours (what core/engine/chat/recipe.py runs): batches grouped by length (little padding), the vocabulary
projection + cross-entropy only at positions with an answer-token target, the studio's precision for this CPU
and its fast path (``speed.FastPath``: the decoder layers compiled after the first step when the kernel cache
holds them, else the fused LoRA projections of ``fused.py``). ``packed`` is the padding-free alternative (one row
per batch, position ids restarting per conversation, block-diagonal attention). Reference: the plain Trainer with
peft LoRA, dynamic padding to the longest row of the batch and the loss on every token. Same model
(SmolLM2-135M-Instruct), LoRA rank, batch size, learning rate and threads.

    .venv/bin/python -m bench.chat_lora [DATA] [--recipes ours,reference] [--steps 20] [--warmup 3] [--json out.json]

Model FLOPs utilisation = useful tokens/s x k x parameters / the fp32 matmul rate measured in the same run.
The headline uses k = 4 (the issue's definition: forward 2 + backward to the activations 2; LoRA computes no
gradient for the frozen weights); k = 6 (the usual full-training count) is printed beside it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from transformers.trainer_callback import PrinterCallback  # noqa: E402

from core.config import JobConfig, TrainConfig  # noqa: E402
from core.engine.callbacks import ItemCounter  # noqa: E402
from core.engine.chat.collate import PackedCollator, PaddedCollator, TokenRows, encode_all  # noqa: E402
from core.engine.chat.loss import ChatTrainer  # noqa: E402
from core.engine.chat.speed import FastPath  # noqa: E402
from core.hardware import detect_hardware  # noqa: E402
from core.home import Home  # noqa: E402
from core.models import load_causal_lm, load_tokenizer, parameter_count, resolve_model  # noqa: E402
from core.presets import choose_precision  # noqa: E402
from core.strategies import apply_strategy  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "assets/examples/kettlebird_support.csv"


def generated_conversations(n: int, seed: int = 0) -> list[list[dict]]:
    """Short question/answer pairs of varied length (about 60-120 tokens rendered), when no file is given."""
    rng = random.Random(seed)
    topics = ["the kettle", "the warranty", "descaling", "the app", "a refund", "the lid", "the filter"]
    verbs = ["check", "clean", "reset", "replace", "register", "update", "descale"]
    rows = []
    for _ in range(n):
        topic, verb = rng.choice(topics), rng.choice(verbs)
        question = f"How do I {verb} {topic}?" + " It has been a problem since last week." * rng.randint(0, 3)
        steps = " ".join(f"Step {i + 1}: {rng.choice(verbs)} {rng.choice(topics)} carefully."
                         for i in range(rng.randint(1, 5)))
        rows.append([{"role": "user", "content": question},
                     {"role": "assistant", "content": f"To {verb} {topic}, follow these steps. {steps}"}])
    return rows


def load_conversations(path: Path | None, rows: int) -> tuple[list[list[dict]], str]:
    if path is not None and path.is_file():
        from core.data import load_data
        data = load_data(path, task="chat")
        data.require_ok()
        return list(data.train["messages"])[:rows], str(path)
    return generated_conversations(rows), "generated"


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


class RssPeak:
    """Samples this process's resident memory every 20 ms; ``peak`` is the largest seen since ``reset``."""

    def __init__(self):
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def reset(self):
        self.peak = self.proc.memory_info().rss

    def close(self):
        self._stop.set()


class StepTimer(TrainerCallback):
    """Wall time and useful tokens of the steps after the warm-up."""

    def __init__(self, warmup: int, counter: ItemCounter):
        self.warmup, self.counter = warmup, counter
        self.t0 = self.tokens0 = self.c0 = None
        self.t1 = self.tokens1 = self.c1 = None
        self.steps = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.t0, self.c0, self.tokens0 = time.perf_counter(), time.process_time(), self.counter.total
        elif state.global_step > self.warmup:
            self.t1, self.c1, self.tokens1 = time.perf_counter(), time.process_time(), self.counter.total
            self.steps = state.global_step - self.warmup


class CountingTrainer(Trainer):
    """The plain Trainer, counting the non-padding tokens of each batch when its loss is computed (a collator
    would count the batch accelerate prefetches one step early)."""

    def __init__(self, *args, counter: ItemCounter, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter

    def compute_loss(self, model, inputs, *args, **kwargs):
        if model.training:
            mask = inputs.get("attention_mask")
            self.counter.add(int(mask.sum()) if mask is not None else inputs["input_ids"].numel())
        return super().compute_loss(model, inputs, *args, **kwargs)


def all_token_rows(rows: list[dict]) -> list[dict]:
    """The reference trains on every token: labels are the input ids."""
    return [{"input_ids": r["input_ids"], "labels": list(r["input_ids"])} for r in rows]


RECIPES = ("ours", "ours-compiled", "ours-eager", "ours-unfused", "ours-fp32", "ours-fp32-compiled", "packed",
           "reference", "reference-bf16")


@dataclass(frozen=True)
class RecipeSetup:
    """What a recipe name means: ``kind`` ours | packed | reference; ``precision``; ``compile`` True/False, or None
    for the studio's automatic choice (compiled when the kernel cache holds this run's kernels); ``fuse``: the
    eager path's fused LoRA projections."""

    kind: str
    precision: str
    compile: bool | None
    fuse: bool


def recipe_setup(name: str, default_precision: str) -> RecipeSetup:
    """What a recipe name runs. ``ours``: the studio's defaults (its precision for this machine, the automatic
    compile choice); ``-compiled`` / ``-eager``: compile forced on / off; ``-unfused``: eager without the fused
    LoRA projections; ``-fp32`` / ``-bf16``: the precision; ``reference``: the plain peer recipe (fp32 unless
    ``-bf16``)."""
    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}: choose from {', '.join(RECIPES)}")
    kind = name.split("-")[0]
    precision = ("fp32" if "-fp32" in name else "bf16" if "-bf16" in name
                 else "fp32" if kind == "reference" else default_precision)
    compiled = True if name.endswith("-compiled") else False if ("-eager" in name or "-unfused" in name
                                                                 or kind != "ours") else None
    if kind == "ours" and "-fp32" in name and not name.endswith("-compiled"):
        compiled = False  # the fp32 row is the eager recipe at the peers' precision
    return RecipeSetup(kind, precision, compiled, fuse=kind == "ours" and "-unfused" not in name)


def run_recipe(name: str, resolved, tokenizer, rows: list[dict], args, rss: RssPeak, default_precision: str) -> dict:
    setup = recipe_setup(name, default_precision)
    torch.manual_seed(0)
    # bf16: the frozen base in bf16, adapters in fp32 (peft), autocast multiplies in bf16 (as the chat recipe)
    model = load_causal_lm(resolved, dtype=torch.bfloat16 if setup.precision == "bf16" else torch.float32)
    train = TrainConfig(lora_r=args.rank, lora_alpha=2 * args.rank, lora_dropout=args.dropout,
                        precision=setup.precision, compile=setup.compile)
    model = apply_strategy("lora", model, "chat", train)
    model.config.use_cache = False
    counter = ItemCounter()
    timer = StepTimer(args.warmup, counter)
    out = Path(args.scratch) / name
    training_args = TrainingArguments(
        output_dir=str(out), max_steps=args.warmup + args.steps, learning_rate=2e-4, lr_scheduler_type="cosine",
        per_device_train_batch_size=args.batch, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
        remove_unused_columns=False, seed=0, bf16=setup.precision == "bf16",
        train_sampling_strategy="group_by_length" if setup.kind == "ours" else "random",
        label_names=["shift_labels"] if setup.kind != "reference" else None,
    )
    if setup.kind == "reference":
        trainer = CountingTrainer(model=model, args=training_args, train_dataset=TokenRows(all_token_rows(rows)),
                                  data_collator=PaddedCollator(tokenizer.pad_token_id, shift=False),
                                  callbacks=[timer], counter=counter)
    else:
        collator = PackedCollator() if setup.kind == "packed" else PaddedCollator(tokenizer.pad_token_id)
        trainer = ChatTrainer(model=model, args=training_args, train_dataset=TokenRows(rows),
                              data_collator=collator, callbacks=[timer], counter=counter)
    trainer.remove_callback(PrinterCallback)
    fast = None
    if setup.kind == "ours":  # the studio's own choice of fast path (speed.FastPath), in the bench's kernel cache
        job = JobConfig(task="chat", strategy="lora", train=train)
        fast = FastPath.for_run(job, Path(args.kernel_home), model, setup.precision, fuse=setup.fuse)
        fast.attach(trainer, model, say=lambda line: None)
    gc.collect()
    rss.reset()
    try:
        trainer.train()
    finally:
        if fast is not None:
            fast.detach()
    seconds = timer.t1 - timer.t0
    tokens = timer.tokens1 - timer.tokens0
    result = {"recipe": name, "precision": setup.precision, "compiled": bool(fast and fast.compile),
              "fused": bool(fast and not fast.compile and setup.fuse), "steps": timer.steps,
              "seconds": seconds, "s_per_step": seconds / timer.steps,
              "warmup_s": timer.t0 - timer.begin,  # the first steps, torch.compile's compilation included
              "useful_tokens": tokens, "tokens_per_s": tokens / seconds,
              "tokens_per_cpu_s": tokens / (timer.c1 - timer.c0), "peak_rss_gb": rss.peak / 2 ** 30,
              "final_loss": trainer.state.log_history[-2].get("loss") if len(trainer.state.log_history) > 1
              else None}
    del trainer, model
    gc.collect()
    return result


def merge_rounds(rounds: list[dict]) -> dict:
    """One recipe's figures over its rounds: throughput from the summed tokens and times, the first round's
    warm-up (the one that compiles cold), the largest peak RSS; each round's tokens/s kept beside."""
    merged = dict(rounds[0])
    seconds, tokens = sum(r["seconds"] for r in rounds), sum(r["useful_tokens"] for r in rounds)
    cpu_seconds = sum(r["useful_tokens"] / r["tokens_per_cpu_s"] for r in rounds)
    steps = sum(r["steps"] for r in rounds)
    merged.update(seconds=seconds, useful_tokens=tokens, steps=steps, s_per_step=seconds / steps,
                  tokens_per_s=tokens / seconds, tokens_per_cpu_s=tokens / cpu_seconds,
                  peak_rss_gb=max(r["peak_rss_gb"] for r in rounds),
                  rounds=[round(r["tokens_per_s"], 1) for r in rounds],
                  warmup_s_rounds=[round(r["warmup_s"], 1) for r in rounds])
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA,
                        help="a chat file (CSV/JSONL...); a generated set is used when it does not exist")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--home", default=None, help="studio home (model cache); default $STUDIO_HOME or ~")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--recipes", default="ours,reference",
                        help=f"comma list of {' | '.join(RECIPES)} (ours: the studio's precision for this machine; "
                        "-compiled: its regional torch.compile)")
    parser.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout for every recipe (peft's "
                        "default 0; 0.05 costs about 10 %% in dropout masks)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the recipes this many times, in ABBA order, and pool the timed steps")
    parser.add_argument("--scratch", default="/tmp/chat_lora_bench")
    parser.add_argument("--kernel-home", default=None,
                        help="a studio home whose kernel cache the studio's recipes use (default: a fresh one, so "
                        "the first compiled recipe compiles cold and the automatic 'ours' finds its kernels)")
    parser.add_argument("--warm-compile", action="store_true",
                        help="then time a compiled run in a new process with the kernel cache warm (what a "
                        "user's next run pays), for the break-even")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fresh = None
    if args.kernel_home is None:
        fresh = tempfile.TemporaryDirectory(prefix="studio-bench-kernels-")
        args.kernel_home = fresh.name

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    torch.set_num_threads(threads)
    resolved = resolve_model(args.model, Home.resolve(args.home), task="chat", progress=print)
    tokenizer = load_tokenizer(resolved)
    conversations, source = load_conversations(args.data, args.rows)
    rows = encode_all(tokenizer, conversations, args.max_length)
    params = parameter_count(resolved)
    default_precision = choose_precision(JobConfig(task="chat", strategy="lora"), detect_hardware())
    peaks = {"fp32": [matmul_gflops()], "bf16": [matmul_gflops(dtype=torch.bfloat16)]}
    rss = RssPeak()
    cache_warm = _kernel_cache_warm(args.kernel_home)
    names = [name.strip() for name in args.recipes.split(",") if name.strip()]
    if "ours" in names and "ours-compiled" in names:  # the cold compile happens in ours-compiled's first round,
        names.remove("ours-compiled")                 # so the automatic 'ours' finds its kernels cached
        names.insert(names.index("ours"), "ours-compiled")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):  # ABBA order: a slow patch of a shared machine hits every recipe alike
        for name in (names if round_ % 2 == 0 else names[::-1]):
            runs[name].append(run_recipe(name, resolved, tokenizer, rows, args, rss, default_precision))
    results = [merge_rounds(runs[name]) for name in names]
    rss.close()
    peaks["fp32"].append(matmul_gflops())
    peaks["bf16"].append(matmul_gflops(dtype=torch.bfloat16))
    for r in results:
        for k in (4, 6):  # against the matmul rate of the recipe's own precision (and fp32's, the issue's)
            r[f"mfu_{k}N"] = r["tokens_per_s"] * k * params / (max(peaks[r["precision"]]) * 1e9)
            r[f"mfu_{k}N_fp32_peak"] = r["tokens_per_s"] * k * params / (max(peaks["fp32"]) * 1e9)
    report = {"data": source, "rows": len(rows), "mean_tokens": sum(len(r["input_ids"]) for r in rows) / len(rows),
              "answer_token_share": sum(sum(lab != -100 for lab in r["labels"]) for r in rows)
              / sum(len(r["input_ids"]) for r in rows),
              "params": params, "threads": threads, "batch": args.batch, "rank": args.rank,
              "matmul_gflops": peaks["fp32"], "matmul_gflops_bf16": peaks["bf16"],
              "default_precision": default_precision, "results": results, "warmup": args.warmup,
              "compile_cache_warm": cache_warm, "rounds": args.rounds}
    ref = next((r for r in results if r["recipe"] == "reference"), None)
    if ref:
        for r in results:
            r["speedup_vs_reference"] = r["tokens_per_s"] / ref["tokens_per_s"]
            r["cpu_speedup_vs_reference"] = r["tokens_per_cpu_s"] / ref["tokens_per_cpu_s"]
    ref_bf16 = next((r for r in results if r["recipe"] == "reference-bf16"), None)
    if ref_bf16:
        for r in results:
            r["speedup_vs_reference_bf16"] = r["tokens_per_s"] / ref_bf16["tokens_per_s"]
    report["break_even"] = break_even(by_name(results))
    if args.warm_compile and any(r["compiled"] for r in results):
        report["warm_compile"] = warm_compile_cost(args)
        report["break_even"] = break_even(by_name(results), report["warm_compile"])
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if fresh is not None:
        fresh.cleanup()
    return 0


def by_name(results: list[dict]) -> dict[str, dict]:
    return {r["recipe"]: r for r in results}


def break_even(by: dict[str, dict], warm: dict | None = None) -> dict:
    """Micro-batches after which compiling pays: its extra seconds in the first steps (cold: the bench's first
    compiled recipe; warm: a new process with the kernels cached) over the seconds it saves per micro-batch
    against the eager default."""
    eager, compiled = by.get("ours-eager"), by.get("ours-compiled")
    if not (eager and compiled) or compiled["s_per_step"] >= eager["s_per_step"]:
        return {}
    saved = eager["s_per_step"] - compiled["s_per_step"]
    cold = compiled["warmup_s_rounds"][0] - eager["warmup_s_rounds"][0]
    out = {"saved_s_per_micro_batch": round(saved, 3), "cold_compile_extra_s": round(cold, 1),
           "cold_micro_batches": round(max(cold, 0.0) / saved)}
    if warm:
        extra = warm["compiled_warmup_s"] - warm["eager_warmup_s"]
        out.update(warm_compile_extra_s=round(extra, 1), warm_micro_batches=round(max(extra, 0.0) / saved))
    return out


def warm_compile_cost(args) -> dict:
    """The first steps of ours-compiled and ours-eager in a new process whose kernel cache is warm."""
    import subprocess

    out = Path(args.scratch) / "warm-compile.json"
    command = [sys.executable, "-m", "bench.chat_lora", str(args.data), "--model", args.model,
               "--recipes", "ours-eager,ours-compiled", "--steps", "2", "--warmup", str(args.warmup),
               "--rows", str(args.rows), "--kernel-home", args.kernel_home, "--json", str(out)]
    if args.home:
        command += ["--home", args.home]
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    by = by_name(json.loads(out.read_text())["results"])
    return {"compiled_warmup_s": by["ours-compiled"]["warmup_s"], "eager_warmup_s": by["ours-eager"]["warmup_s"]}


def _kernel_cache_warm(kernel_home: str) -> bool:
    """Whether the bench's kernel cache already holds compiled code (then compiling takes far less)."""
    folder = Path(kernel_home) / "cache" / "torchinductor"
    return folder.is_dir() and any(folder.iterdir())


def print_table(report: dict) -> None:
    fp32, bf16 = report["matmul_gflops"], report["matmul_gflops_bf16"]
    print(f"\ndata: {report['data']} ({report['rows']} rows, {report['mean_tokens']:.0f} tokens/row, "
          f"{report['answer_token_share']:.0%} answer tokens); params {report['params'] / 1e6:.1f} M; "
          f"threads {report['threads']}; batch {report['batch']}; LoRA r={report['rank']}; matmul GFLOP/s "
          f"(before/after) fp32 {fp32[0]:.0f}/{fp32[1]:.0f}, bf16 {bf16[0]:.0f}/{bf16[1]:.0f}; the studio trains "
          f"chat LoRA here in {report['default_precision']}")
    head = (f"{'recipe':<20}{'prec':>5}{'tokens/s':>10}{'s/step':>8}{'MFU 4N':>8}{'(fp32)':>7}{'peak RSS':>10}"
            f"{'x ref':>7}{'x ref16':>8}{'tok/cpu-s':>10}{'x ref':>7}{'first steps':>12}")
    print(head)
    nan = float("nan")
    for r in report["results"]:
        print(f"{r['recipe']:<20}{r['precision']:>5}{r['tokens_per_s']:>10.0f}{r['s_per_step']:>8.2f}"
              f"{r['mfu_4N']:>8.2f}{r['mfu_4N_fp32_peak']:>7.2f}{r['peak_rss_gb']:>9.2f}G"
              f"{r.get('speedup_vs_reference', nan):>7.2f}{r.get('speedup_vs_reference_bf16', nan):>8.2f}"
              f"{r['tokens_per_cpu_s']:>10.0f}{r.get('cpu_speedup_vs_reference', nan):>7.2f}{r['warmup_s']:>11.1f}s")
    if report.get("rounds", 1) > 1:
        print("tokens/s per round (ABBA order): " + "; ".join(
            f"{r['recipe']} {'/'.join(f'{v:.0f}' for v in r['rounds'])}" for r in report["results"]))
    print(f"first steps: wall time of the {report['warmup']} untimed steps (compiled recipes compile there; "
          f"kernel cache {'warm' if report['compile_cache_warm'] else 'cold'} at the start). x ref: against the fp32 "
          "reference; x ref16: against the reference in bf16 (equal precision).")
    print("tok/cpu-s: useful tokens per second of this process's CPU time, steadier than wall time on a busy "
          "machine.")
    print("MFU 4N = useful tokens/s x 4 x params / the matmul rate of the recipe's precision (the issue's "
          "definition; LoRA skips the frozen weights' gradients); (fp32): against the fp32 rate.")
    even = report.get("break_even") or {}
    if even:
        print(f"compiling saves {even['saved_s_per_micro_batch']:.2f} s a micro-batch; it pays after "
              f"{even['cold_micro_batches']} micro-batches from a cold kernel cache "
              f"({even['cold_compile_extra_s']:.0f} s "
              "extra)" + (f", after {even['warm_micro_batches']} with the kernels cached "
                          f"({even['warm_compile_extra_s']:.0f} s extra, new process)" if "warm_micro_batches" in even
                          else ""))


if __name__ == "__main__":
    raise SystemExit(main())

"""GPU speed: the studio's chat recipe against the plain Trainer + peft recipe, QLoRA and LoRA, on a 1B and a
7B-class model, side by side in one process.

    python -m bench --gpu            (this section alone; under 8 minutes on one H100/H200)
    python -m bench.gpu [--quick] [--models 1b,7b] [--json out.json]
    python -m bench.gpu --smoke      (a tiny model on whatever device there is: checks the code path)

For each model and strategy: ours (bf16, conversations packed into one row with restarting position ids, SDPA or
FlashAttention 2, the loss on answer tokens only with the vocabulary projection in slices, Liger's kernels when
installed) and the reference (Trainer + peft, bf16, rows padded to the longest of the batch, the loss on every
token); same model object, LoRA rank, batch and data, ABBA order. Reported: useful tokens/s, peak GPU memory and
MFU = 4 x parameters x useful tokens/s / the card's bf16 matmul rate measured in the same run (an 8192^3 product).

The models: the hub weights when the local hub cache holds them (``HF_HUB_OFFLINE`` is set: nothing downloads),
else the same architecture with random weights, which trains at the same speed in the same memory (the figures
depend on the shapes, not the values); the JSON says which. QLoRA quantises the weights to NF4 with double
quantisation on the GPU, as bitsandbytes does when loading.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The architectures measured (hub configs): a 1B-class and a 7B-class instruct model; both ungated in the cache.
MODELS = {
    "1b": ("Qwen/Qwen2.5-1.5B-Instruct", dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960,
                                              num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                                              vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6,
                                              max_position_embeddings=32768)),
    "7b": ("Qwen/Qwen2.5-7B-Instruct", dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944,
                                            num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                                            vocab_size=152064, tie_word_embeddings=False, rope_theta=1e6,
                                            max_position_embeddings=32768)),
    "tiny": (None, dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True,
                        max_position_embeddings=2048)),
}


def conversations(n: int, vocab: int, seed: int = 0, longest: int = 1024) -> list[dict]:
    """Token rows shaped like chat data: 64-``longest`` tokens, the last 30-60 % of each an answer."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.randint(64, longest)
        answer = int(length * rng.uniform(0.3, 0.6))
        ids = [rng.randrange(10, vocab) for _ in range(length)]
        rows.append({"input_ids": ids, "labels": [-100] * (length - answer) + ids[length - answer:]})
    return rows


def build_model(name: str, strategy: str, device: str):
    """(model, source) for ``name``: the cached hub weights, else random weights of the same shape; QLoRA in
    NF4 + double quantisation, LoRA in bf16."""
    from transformers import AutoConfig, AutoModelForCausalLM

    hub_id, shape = MODELS[name]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if hub_id and _cached(hub_id) and strategy == "lora":
        return AutoModelForCausalLM.from_pretrained(hub_id, dtype=dtype).to(device), "hub weights"
    if hub_id and _cached(hub_id):
        from core.strategies import quantization_config

        model = AutoModelForCausalLM.from_pretrained(hub_id, dtype=dtype, device_map={"": 0},
                                                     quantization_config=quantization_config(dtype))
        return model, "hub weights"
    config = AutoConfig.for_model(**shape)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if strategy == "qlora":
        quantize_nf4(model, dtype, device)
    return model, "random weights of the same shape"


def _cached(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:
        return False


def quantize_nf4(model, compute_dtype: torch.dtype, device: str) -> None:
    """Replace the decoder's linear layers by bitsandbytes NF4 layers (double quantisation), as a 4-bit load does."""
    import bitsandbytes as bnb

    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is not torch.nn.Linear or child_name == "lm_head":
                continue
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=compute_dtype, compress_statistics=True, quant_type="nf4")
            layer.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=True,
                                             quant_type="nf4")
            if child.bias is not None:
                layer.bias = child.bias
            setattr(module, child_name, layer.to(device))  # moving a Params4bit quantises it
    model.is_loaded_in_4bit = True
    gc.collect()


def bf16_matmul_tflops(device: str, n: int = 8192) -> float:
    """The card's bf16 matmul rate (the MFU denominator), measured: the mean of 10 products after 3."""
    dtype = torch.bfloat16
    n = n if device == "cuda" else 1024
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    _sync(device)
    return 2 * n ** 3 * 10 / (time.perf_counter() - start) / 1e12


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_one(model, recipe: str, strategy: str, rows: list[dict], args, device: str) -> dict:
    """Train ``model`` wrapped for ``strategy`` with ``recipe`` (ours | reference) for warm-up + timed steps."""
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from bench.chat_lora import CountingTrainer, StepTimer, all_token_rows
    from core.config import TrainConfig
    from core.engine.callbacks import ItemCounter
    from core.engine.chat.collate import PackedCollator, PaddedCollator, TokenRows
    from core.engine.chat.loss import ChatTrainer
    from core.strategies import apply_strategy

    torch.manual_seed(0)
    train = TrainConfig(lora_r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, gradient_checkpointing=False)
    wrapped = apply_strategy(strategy, model, "chat", train)
    wrapped.config.use_cache = False
    counter = ItemCounter()
    timer = StepTimer(args.warmup, counter)
    ours = recipe == "ours"
    arguments = TrainingArguments(
        output_dir=str(Path(args.scratch) / recipe), max_steps=args.warmup + args.steps, learning_rate=1e-4,
        per_device_train_batch_size=args.batch, logging_steps=1, save_strategy="no", report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False, seed=0,
        bf16=device == "cuda", use_cpu=device != "cuda",
        train_sampling_strategy="group_by_length" if ours else "random",
        label_names=["shift_labels"] if ours else None)
    if ours:
        trainer = ChatTrainer(model=wrapped, args=arguments, train_dataset=TokenRows(rows), callbacks=[timer],
                              data_collator=PackedCollator(), counter=counter)
    else:
        trainer = CountingTrainer(model=wrapped, args=arguments, train_dataset=TokenRows(all_token_rows(rows)),
                                  data_collator=PaddedCollator(0, shift=False), callbacks=[timer], counter=counter)
    trainer.remove_callback(PrinterCallback)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    seconds, tokens = timer.t1 - timer.t0, timer.tokens1 - timer.tokens0
    result = {"recipe": recipe, "steps": timer.steps, "seconds": seconds, "s_per_step": seconds / timer.steps,
              "useful_tokens": tokens, "tokens_per_s": tokens / seconds, "warmup_s": timer.t0 - timer.begin,
              "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
              "rounds": [tokens / seconds]}
    _unwrap(wrapped)
    del trainer, wrapped
    gc.collect()
    return result


def _unwrap(wrapped) -> None:
    """Take the adapters off again, so the next recipe starts from the same base model."""
    unload = getattr(wrapped, "unload", None)
    if unload is not None:
        unload()


def bench_model(name: str, strategy: str, args, device: str, peak_tflops: float) -> dict:
    from core.engine.chat.gpu import apply_liger, attention_implementation
    from core.hardware import detect_hardware

    started = time.perf_counter()
    model, source = build_model(name, strategy, device)
    hardware = detect_hardware()
    attention = attention_implementation(hardware)
    model.set_attn_implementation(attention)
    # a 4-bit weight packs two parameters in a byte
    params = sum(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1) for p in model.parameters())
    rows = conversations(args.rows, model.config.vocab_size, longest=args.longest)
    runs: dict[str, list[dict]] = {"ours": [], "reference": []}
    liger = False
    for round_ in range(args.rounds):
        for recipe in (("ours", "reference") if round_ % 2 == 0 else ("reference", "ours")):
            if recipe == "ours" and not liger:
                liger = apply_liger(model, hardware)  # patches the model in place for the rest of the run
            runs[recipe].append(run_one(model, recipe, strategy, rows, args, device))
    out = {"model": name, "hub_id": MODELS[name][0], "weights": source, "strategy": strategy,
           "params": params, "attention": attention, "liger": liger, "setup_s": round(time.perf_counter() - started)}
    for recipe, results in runs.items():
        seconds = sum(r["seconds"] for r in results)
        tokens = sum(r["useful_tokens"] for r in results)
        out[recipe] = {"tokens_per_s": tokens / seconds, "s_per_step": seconds / sum(r["steps"] for r in results),
                       "peak_gpu_gb": max((r["peak_gpu_gb"] or 0) for r in results) or None,
                       "rounds": [round(r["tokens_per_s"]) for r in results],
                       "mfu": tokens / seconds * 4 * params / (peak_tflops * 1e12)}
    out["speedup"] = out["ours"]["tokens_per_s"] / out["reference"]["tokens_per_s"]
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def rows_of(report: dict) -> list[dict]:
    from bench.common import row

    rows = []
    for r in report["results"]:
        label = f"{r['strategy']} {r['model']} ({'hub' if r['weights'] == 'hub weights' else 'random'} weights)"
        ours, ref = r["ours"], r["reference"]
        memory = (f"peak GPU memory {ours['peak_gpu_gb']:.1f} vs {ref['peak_gpu_gb']:.1f} GB; "
                  if ours["peak_gpu_gb"] else "")
        rows.append(row("gpu", f"{label}: ours / Trainer+peft, useful tokens/s", r["speedup"], "x",
                        note=f"{ours['tokens_per_s']:.0f} vs {ref['tokens_per_s']:.0f} tokens/s; {memory}"
                             f"MFU {ours['mfu']:.2f} vs {ref['mfu']:.2f}; {r['attention']}"
                             + ("; Liger" if r["liger"] else "")))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 1B model only, fewer steps")
    parser.add_argument("--smoke", action="store_true", help="a tiny model on any device (checks the code path)")
    parser.add_argument("--models", default="1b,7b")
    parser.add_argument("--strategies", default="qlora,lora")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--longest", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scratch", default="/tmp/studio-bench-gpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.models, args.steps, args.warmup, args.rows, args.longest, args.rounds = "tiny", 2, 1, 16, 96, 1
    elif device != "cuda":
        report = {"rows": [_unavailable()], "details": {"device": "cpu"}}
        print(json.dumps(report["rows"][0]))
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
        return 0
    elif args.quick:
        args.models, args.steps, args.rounds = "1b", 4, 1
    peak = bf16_matmul_tflops(device)
    results = [bench_model(name, strategy, args, device, peak) for name in args.models.split(",")
               for strategy in args.strategies.split(",")]
    card = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    report = {"card": card, "bf16_tflops": peak, "results": results, "batch": args.batch, "rank": args.rank,
              "steps": args.steps, "rounds": args.rounds}
    report["rows"] = rows_of(report)
    from bench.common import render_table

    print(f"{card}: bf16 matmul {peak:.0f} TFLOP/s")
    print(render_table(report["rows"]))
    if args.json:
        args.json.write_text(json.dumps({"rows": report["rows"], "details": report}, indent=1, default=str))
    return 0


def _unavailable() -> dict:
    from bench.common import row

    return row("gpu", "(section)", "not available: no CUDA GPU on this machine (bench/gpu_check.sh runs it on one)")


if __name__ == "__main__":
    sys.exit(main())

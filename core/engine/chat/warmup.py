"""Build the compiled kernels of a chat run ahead of time, so the next run with the same key compiles in seconds.

    python -m core.engine.chat.warmup [--config RUN/config.yaml] [--home HOME]

Without ``--config`` it warms the default chat job (the packaged SmolLM2, LoRA, the precision the presets pick on
this machine). It trains the real recipe for three steps on generated conversations with ``train.compile`` on:
the same layers, precision and adapter as the run, batches with and without padding, so inductor's cache ends up
with the graphs a real run asks for, and the key is marked warm (``compile.KernelCache``). Nothing is saved.

The studio starts it in the background, at the lowest CPU priority, after a chat run that trained eagerly because
its kernels were not cached yet (``speed.start_background_warmup``); the setup script or an image build can run it too.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from .speed import LOCK_FILE


def generated_chat(n: int = 24) -> list[list[dict]]:
    """Short conversations of a few lengths (so batches come both with and without padding)."""
    rows = []
    for i in range(n):
        words = " ".join(["kettle"] * (4 + 6 * (i % 4)))
        rows.append([{"role": "user", "content": f"Question {i % 4}: {words}?"},
                     {"role": "assistant", "content": f"Answer {i % 4}: {words}."}])
    return rows


def warm_kernels(config, home, say=print) -> float:
    """Train ``config``'s chat job compiled for three steps on generated data; returns the seconds it took.

    Args:
        config: a filled chat ``JobConfig`` (its model, strategy, precision and LoRA settings are used).
        home: the studio ``Home`` (model cache and kernel cache).
        say: called with progress lines.
    """
    from datasets import Dataset

    from ...models import resolve_model
    from ...runs import RunDir
    from ..context import TrainContext
    from ..events import Reporter
    from .recipe import ChatRecipe

    started = time.perf_counter()
    train = dataclasses.replace(config.train, compile=True, max_steps=3, batch_size=4, grad_accum=1,
                                eval_every=None, save_every=10_000, max_length=config.train.max_length or 256,
                                replay=0.0)
    job = dataclasses.replace(config, train=train)
    with tempfile.TemporaryDirectory(prefix="studio-warmup-") as scratch:
        run = RunDir.create(Path(scratch), "warmup", "chat")
        data = SimpleNamespace(task="chat", train=Dataset.from_dict({"messages": generated_chat()}),
                               validation=None, labels=None, summary={})
        resolved = resolve_model(job.model, home, task="chat")
        ctx = TrainContext(config=job, home=home, run=run, data=data, model=resolved,
                           reporter=Reporter(None, []), stop=threading.Event())
        recipe = ChatRecipe(ctx)
        try:
            recipe.setup()
            recipe.train()
        finally:
            recipe.cleanup()
    seconds = time.perf_counter() - started
    say(f"Compiled kernels for {job.model} ({job.strategy}, {train.precision}) are cached ({seconds:.0f} s).")
    return seconds


def _default_config(home):
    from ...config import DataConfig, JobConfig
    from ...hardware import detect_hardware
    from ...presets import fill_presets

    job = JobConfig(task="chat", strategy="lora", data=DataConfig(path="generated"))
    return fill_presets(job, 64, detect_hardware())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.engine.chat.warmup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="a chat run's config.yaml (default: the default "
                        "chat job on this machine)")
    parser.add_argument("--home", default=None, help="the studio home (default $STUDIO_HOME or ~/.finetune-studio)")
    args = parser.parse_args(argv)
    from ...config import JobConfig
    from ...home import Home

    home = Home.resolve(args.home)
    lock = home.cache / LOCK_FILE
    try:
        config = JobConfig.load(args.config) if args.config else _default_config(home)
        if config.task != "chat":
            print(f"{args.config} is a {config.task} job: only chat runs compile.", file=sys.stderr)
            return 2
        warm_kernels(config, home)
        return 0
    finally:
        lock.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())

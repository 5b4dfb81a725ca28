"""torch.compile for chat training on a CPU, one repeated block at a time ("regional" compilation).

A causal LM is a stack of identical decoder layers. Compiling each layer (``Module.compile``) instead of the
whole model gives inductor one small graph that every layer reuses: on 2 CPU cores compiling took about 50 s
the first time and about 6 s with the kernel cache warm, against about 380 s and 125 s for the whole model,
and trained as fast in steady state (bench/chat_lora.py). The cache lives in the studio home, so only the
first run on a machine pays the 50 s.

The layers are compiled after the first optimiser step, so the first point of the loss curve comes at eager
speed, and evaluation and generation run eagerly (their no-grad graphs would be compiled again, for one pass).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import torch
from transformers import TrainerCallback


def repeated_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The longest run of same-class modules in one ``ModuleList`` (a transformer's layers), or []."""
    best: list[torch.nn.Module] = []
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > len(best):
            kinds = Counter(type(child) for child in module)
            if len(kinds) == 1:
                best = list(module)
    return best if len(best) >= 2 else []


def compile_blocks(model: torch.nn.Module) -> int:
    """Compile each repeated block in place (shapes dynamic: batches vary in length); how many were."""
    blocks = repeated_blocks(model)
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)


def use_cache_in(folder: os.PathLike) -> None:
    """Keep inductor's compiled kernels in ``folder`` (unless the user chose a place), so they outlive /tmp.

    inductor writes its default (/tmp/torchinductor_USER) into ``TORCHINDUCTOR_CACHE_DIR`` the first time it
    looks, which an import may already have done: that value counts as not chosen.
    """
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == os.path.abspath(_inductor_default()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)


def _inductor_default() -> str:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # moved in a later torch: then only an unset variable counts as not chosen
        return ""
    return default_cache_dir()


WARM_FILE = "studio-warm.json"


def kernel_key(model_config, precision: str, strategy: str, train) -> str:
    """What inductor's compiled kernels for a chat run depend on: torch, the CPU's vector ISA, the layer shapes,
    the precision and the adapter. Runs with the same key reuse the kernels (the sequence length is dynamic).

    Args:
        model_config: the transformers config of the model (its layer shapes are read from it).
        precision: "bf16" or "fp32".
        strategy: the strategy key (lora, qlora, full).
        train: the ``TrainConfig`` (LoRA rank, alpha, dropout).
    """
    import torch

    shape_fields = ("model_type", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
                    "head_dim", "hidden_act", "attention_bias", "mlp_bias", "tie_word_embeddings")
    parts = {
        "torch": torch.__version__, "python": platform.python_version(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "layers": {f: getattr(model_config, f, None) for f in shape_fields},
        "attention": getattr(model_config, "_attn_implementation", None),
        "precision": precision, "strategy": strategy,
        "lora": [train.lora_r, train.lora_alpha, train.lora_dropout],
    }
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class KernelCache:
    """The studio's inductor kernel cache folder and the keys of the runs whose kernels it holds.

    A key is recorded after a run compiled its layers and trained with them, so a warm key means the next run
    with that key compiles in seconds instead of about a minute (2 cores).

    Args:
        folder: the cache folder (``<studio home>/cache/torchinductor``).
    """

    def __init__(self, folder: os.PathLike):
        self.folder = Path(folder)

    def _read(self) -> dict:
        try:
            return json.loads((self.folder / WARM_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def is_warm(self, key: str) -> bool:
        return key in self._read()

    def mark_warm(self, key: str, seconds: float | None = None) -> None:
        """Record that the kernels for ``key`` are in the cache (``seconds``: what compiling them took)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        known = self._read()
        known[key] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "compile_s": seconds}
        tmp = self.folder / f".{WARM_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        tmp.replace(self.folder / WARM_FILE)


def eager():
    """A context in which compiled modules run their ordinary Python code (evaluation, generation)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


class CompileAfterFirstStep(TrainerCallback):
    """Compiles the model's repeated blocks before the second optimiser step (the first is logged by then).

    Args:
        model: the model being trained (the same object the Trainer holds, peft wrapper or not).
        say: called with one line for the log before compiling starts (the next step waits for it).
        cache: where to record that the kernels for ``key`` are built, once the first compiled step is done.
        key: the run's ``kernel_key``.
    """

    def __init__(self, model: torch.nn.Module, say=print, cache: KernelCache | None = None, key: str | None = None):
        self.model, self.say, self.done = model, say, False
        self.cache, self.key = cache, key
        self.started: float | None = None
        self.compile_step_s: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.done or state.global_step < 1:
            return
        self.done = True
        warm = self.cache is not None and self.key is not None and self.cache.is_warm(self.key)
        count = compile_blocks(self.model)
        if count:
            self.started = time.perf_counter()
            self.say(f"Compiling the model's {count} layers for this CPU ("
                     + ("kernels cached by an earlier run: seconds" if warm else
                        "about a minute the first time on 2 cores, seconds after that")
                     + "); training goes on when it is done.")

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is None or self.compile_step_s is not None:
            return
        self.compile_step_s = time.perf_counter() - self.started  # the step that compiled (and then trained)
        if self.cache is not None and self.key is not None:
            self.cache.mark_warm(self.key, round(self.compile_step_s, 1))

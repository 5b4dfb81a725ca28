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
import os
from collections import Counter

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


def eager():
    """A context in which compiled modules run their ordinary Python code (evaluation, generation)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


class CompileAfterFirstStep(TrainerCallback):
    """Compiles the model's repeated blocks before the second optimiser step (the first is logged by then).

    Args:
        model: the model being trained (the same object the Trainer holds, peft wrapper or not).
        say: called with one line for the log before compiling starts (the next step waits for it).
    """

    def __init__(self, model: torch.nn.Module, say=print):
        self.model, self.say, self.done = model, say, False

    def on_step_begin(self, args, state, control, **kwargs):
        if self.done or state.global_step < 1:
            return
        self.done = True
        count = compile_blocks(self.model)
        if count:
            self.say(f"Compiling the model's {count} layers for this CPU (about a minute the first time on 2 "
                     "cores, seconds after that); training goes on when it is done.")

"""Which fast path a chat run takes on a CPU: compiled layers when they pay, else fused LoRA projections.

``train.compile`` true or false is obeyed. Left empty (the presets leave it empty for runs long enough to pay
back a compile from a warm kernel cache, but not from a cold one), the layers are compiled when this machine's
kernel cache already holds them for this run's key (torch, CPU, layer shapes, precision, adapter), which costs
seconds; otherwise the run trains eagerly with ``fused.fuse_lora`` and, if it trained long enough to show the
machine is used for such runs, the kernels are built afterwards in the background (``warmup``) for the next one.
The first optimiser step is eager either way, so the first point of the loss curve is never delayed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .compile import CompileAfterFirstStep, KernelCache, kernel_key, use_cache_in
from .fused import FusedGroup, fuse_lora, unfuse_lora

# A background warm-up follows an eager run only when that run trained at least this long: a machine that
# trains chat runs of minutes gains from the kernels; a short test run does not start a minute of compiling.
WARMUP_AFTER_TRAINING_S = 120.0
LOCK_FILE = "studio-warmup.lock"  # one background warm-up at a time per studio home
STALE_LOCK_S = 3600


@dataclass
class FastPath:
    """The speed-ups of one chat training run.

    Args:
        compile: the decoder layers are compiled after the first step.
        automatic: ``train.compile`` was left empty (the kernel cache decided).
        cache: the studio's kernel cache; key: this run's ``kernel_key``.
        reason: one sentence for the run's log.
    """

    compile: bool
    automatic: bool
    cache: KernelCache
    key: str
    reason: str
    fuse: bool = True
    groups: list[FusedGroup] = field(default_factory=list)
    started: float | None = None
    trained_s: float = 0.0

    @classmethod
    def for_run(cls, config, home_root: Path, model, precision: str, fuse: bool = True) -> "FastPath":
        """Decide the fast path of a run.

        Args:
            config: the filled ``JobConfig``.
            home_root: the studio home folder (its kernel cache).
            model: the wrapped model about to train (its config gives the layer shapes).
            precision: "bf16" or "fp32", what the run trains in.
            fuse: allow ``fuse_lora`` on the eager path (the bench turns it off to measure it).
        """
        cache = KernelCache(Path(home_root) / "cache" / "torchinductor")
        key = kernel_key(_base_config(model), precision, config.strategy, config.train)
        setting = config.train.compile
        if setting is not None:
            reason = "train.compile is on" if setting else "train.compile is off"
            return cls(bool(setting), False, cache, key, reason, fuse)
        if cache.is_warm(key):
            return cls(True, True, cache, key, "its compiled kernels are cached on this machine", fuse)
        return cls(False, True, cache, key, "its kernels are not compiled on this machine yet", fuse)

    def attach(self, trainer, model, say) -> None:
        """Add the compile callback, or fuse the LoRA projections, before ``trainer.train()``."""
        self.started = time.perf_counter()
        if self.compile:
            use_cache_in(self.cache.folder)
            trainer.add_callback(CompileAfterFirstStep(model, say, self.cache, self.key))
            return
        if self.fuse:
            self.groups = fuse_lora(model)

    def detach(self) -> None:
        """After training: give the LoRA layers their peft forward back."""
        if self.started is not None:
            self.trained_s += time.perf_counter() - self.started
            self.started = None
        unfuse_lora(self.groups)
        self.groups = []

    @property
    def wants_warmup(self) -> bool:
        """An automatic run that trained eagerly for a while: build its kernels for the next run."""
        return self.automatic and not self.compile and self.trained_s >= WARMUP_AFTER_TRAINING_S

    def describe(self) -> str:
        if self.compile:
            return f"Compiled layers after the first step: {self.reason}."
        fused = f" {len(self.groups)} LoRA groups fused." if self.groups else ""
        return f"Eager training: {self.reason}.{fused}"


def _base_config(model):
    """The transformers config under peft/DDP wrappers."""
    inner = getattr(model, "module", model)
    return getattr(inner, "config", None) or inner.get_base_model().config


def start_background_warmup(config_path: Path, home_root: Path) -> subprocess.Popen | None:
    """Run ``python -m core.engine.chat.warmup --config CONFIG`` detached, at the lowest CPU priority.

    Returns the process, or None when another warm-up holds the lock. Its output goes to
    ``<home>/logs/warmup.log``.

    Args:
        config_path: the run's filled config.yaml.
        home_root: the studio home folder.
    """
    lock = Path(home_root) / "cache" / LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    if lock.exists() and time.time() - lock.stat().st_mtime < STALE_LOCK_S:
        return None
    lock.write_text(str(os.getpid()), encoding="utf-8")
    log = Path(home_root) / "logs" / "warmup.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "core.engine.chat.warmup", "--config", str(config_path),
               "--home", str(home_root)]
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    with open(log, "a", encoding="utf-8") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=root, start_new_session=True, preexec_fn=lambda: os.nice(19))

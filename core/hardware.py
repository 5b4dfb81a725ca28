"""What machine we train on: device, precision, threads and memory."""
from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda" or "cpu" (mps is treated as cpu for training: peft/bnb support is partial)
    device_name: str
    cpu_cores: int
    total_memory_gb: float
    available_memory_gb: float
    gpu_memory_gb: float | None
    bf16: bool  # train in bf16 (GPUs that support it); fp32 on CPUs, where bf16 matmul is slower without AMX

    @property
    def train_threads(self) -> int:
        """Threads for training. On 2 cores both train: measured, the UI still answers in 41 ms at p95 (the
        server's work is light and the OS shares the cores) and a chat step takes half the time. Bigger machines
        keep a core or two free for the UI and data loading."""
        if self.cpu_cores <= 2:
            return self.cpu_cores
        return self.cpu_cores - 1 if self.cpu_cores <= 4 else self.cpu_cores - 2

    def describe(self) -> str:
        if self.device == "cuda":
            return f"{self.device_name} ({self.gpu_memory_gb:.0f} GB), {'bf16' if self.bf16 else 'fp16/fp32'}"
        return f"CPU, {self.cpu_cores} cores, {self.available_memory_gb:.1f} of {self.total_memory_gb:.1f} GB free, fp32"


def detect_hardware() -> Hardware:
    """Read the machine once; cheap enough to call per job."""
    import torch  # imported here: the UI shows the hardware line long before anything needs torch

    mem = psutil.virtual_memory()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, cores, mem.total / 2**30, mem.available / 2**30,
                        props.total_memory / 2**30, torch.cuda.is_bf16_supported())
    return Hardware("cpu", "CPU", cores, mem.total / 2**30, mem.available / 2**30, None, False)


def cxx_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would build its kernels with, or None (then no compile)."""
    import shutil

    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None

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
    bf16: bool  # the device multiplies bf16 matrices natively (a recent GPU; a CPU with AVX512-BF16 or AMX)

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
        return (f"CPU, {self.cpu_cores} cores, {self.available_memory_gb:.1f} of {self.total_memory_gb:.1f} GB free, "
                f"{'bf16 matrix units' if self.bf16 else 'fp32'}")


def detect_hardware() -> Hardware:
    """Read the machine once; cheap enough to call per job."""
    import torch  # imported here: the UI shows the hardware line long before anything needs torch

    mem = psutil.virtual_memory()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, cores, mem.total / 2**30, mem.available / 2**30,
                        props.total_memory / 2**30, torch.cuda.is_bf16_supported())
    return Hardware("cpu", "CPU", cores, mem.total / 2**30, mem.available / 2**30, None, cpu_has_bf16_units())


# CPU flags (Linux /proc/cpuinfo names) of instructions that multiply bf16 matrices in hardware. With them a bf16
# matmul runs about 2.6x faster than fp32 (measured: AMD EPYC, AVX512-BF16, 2 threads, 385 vs 148 GFLOP/s);
# without them (plain AVX512/AVX2, Apple, ARM) torch emulates bf16 and fp32 is faster.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16_units(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 matrix instructions (read from the kernel's CPU flags; False where unknown)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def cxx_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would build its kernels with, or None (then no compile)."""
    import shutil

    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None

"""Handing memory a phase freed back to the system (no other module of the studio is imported here, so the model
loaders and the engine can both use it)."""
from __future__ import annotations


def release_memory() -> None:
    """Collect what Python no longer references and hand the C heap's free pages back to the system.

    glibc keeps the memory a phase freed (a trainer, its optimiser, a bf16 copy of the model) for the process's
    next allocations, so without ``malloc_trim`` the next phase (the fp32 comparison with the base, which maps its
    weights from the file and cannot reuse that heap) adds its memory on top: bench/memory.py measured the default
    chat job's peak in that phase. Elsewhere (macOS, musl) only the garbage collection runs.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # no glibc
        pass

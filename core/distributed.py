"""Which process of a distributed run (``accelerate launch``/torchrun) this is: only rank 0 writes the run."""
from __future__ import annotations

import os


def is_main_process() -> bool:
    """True on rank 0, and in any run that is not distributed."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return int(os.environ.get("WORLD_SIZE", "1"))

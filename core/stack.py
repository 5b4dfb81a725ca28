"""The training stack (torch, transformers, peft), imported once, by one thread at a time.

Importing it takes seconds (about 5 s of the time from Start to the first loss point on a 2-core machine), so the
studio imports it in the background as soon as it serves (``warm_up``). transformers resolves its names lazily
on first use, and two threads doing that first use at the same moment can see a half-made module ("cannot
import name 'AutoTokenizer' from 'transformers'"). So every entry point that needs the stack calls ``load()``
first: the first caller imports everything under a lock, the others wait for it and then find it all imported.

This module imports third-party packages only: the studio's own modules import it, never the other way round.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

logger = logging.getLogger("studio")
_lock = threading.Lock()
_loaded = False


def load() -> None:
    """Import the whole stack once; cheap when it is already imported; safe from any thread."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        start = time.perf_counter()
        import torch  # noqa: F401
        import transformers
        from transformers import (  # noqa: F401  every name the studio takes from transformers, resolved here
            AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageClassification,
            AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments,
            StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer, set_seed,
        )
        from transformers.trainer_callback import PrinterCallback  # noqa: F401
        import peft  # noqa: F401
        from peft import LoraConfig, PeftModel, get_peft_model  # noqa: F401
        _quiet(transformers)
        _loaded = True
        logger.debug("training stack (transformers %s) imported in %.1f s", transformers.__version__,
                     time.perf_counter() - start)


def _quiet(transformers) -> None:
    """The studio says what it loads and why: transformers' own load reports ("classifier.weight MISSING", which
    is the new head) and weight-loading bars only repeat it in a user's log. TRANSFORMERS_VERBOSITY, when set,
    wins (an engineer who wants them back)."""
    import os
    import warnings

    if not os.environ.get("TRANSFORMERS_VERBOSITY"):
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    # peft asks the model whether it checkpoints through a name transformers 5 renamed; nothing a user can change
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)


def warm_up(then: Callable[[], None] | None = None) -> threading.Thread:
    """Import the stack in a daemon thread (the server answers meanwhile); returns the thread.

    Args:
        then: called in the same thread once the stack is in (the caller imports its own modules there).
    """
    def run() -> None:
        try:
            load()
            if then is not None:
                then()
        except Exception:  # a broken install shows up, with its real message, when a job needs the stack
            logger.exception("importing the training stack in the background failed")

    thread = threading.Thread(target=run, name="studio-stack-import", daemon=True)
    thread.start()
    return thread

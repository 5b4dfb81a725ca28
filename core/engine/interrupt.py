"""Stop for the phases that never look at the stop event: the final evaluation (a forward pass per batch and a
few generated answers, a minute on a CPU for a small chat model).

Training checks the stop event after every step; the comparison at the end runs library code with no such
check. Inside ``stop_interrupts(stop)`` a watcher thread raises ``StopNow`` in the main thread as soon as
``stop`` is set (Python runs the handler at its next bytecode, so within one native call). Only the main thread
can be interrupted this way: the training process and ``studio train`` run the job there; a job run on another
thread (tests) simply finishes the phase.
"""
from __future__ import annotations

import _thread
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

# A signal no library of ours handles; interrupt_main only trips Python's flag for it (no real signal is sent).
SIGNAL = getattr(signal, "SIGUSR1", None)


class StopNow(BaseException):
    """Raised in the main thread when Stop comes during a phase that cannot check for it.

    A ``BaseException``, so library code that catches ``Exception`` lets it through.
    """


@contextmanager
def stop_interrupts(stop: threading.Event) -> Iterator[None]:
    """Within the block, ``stop`` being set (already, or later) raises ``StopNow`` in the main thread.

    Args:
        stop: the job's stop event.
    """
    if SIGNAL is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = [True]

    def handler(signum, frame) -> None:
        if armed[0]:  # a trip that lands after the block ended is ignored
            armed[0] = False
            raise StopNow()

    previous = signal.signal(SIGNAL, handler)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(0.1):
                if not done.is_set():
                    _thread.interrupt_main(SIGNAL)
                return

    watcher = threading.Thread(target=watch, name="studio-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        armed[0] = False
        done.set()
        watcher.join()
        signal.signal(SIGNAL, previous)

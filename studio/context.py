"""What every tab needs: the home, the one job manager, the machine, and the components tabs share."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.hardware import Hardware
from core.home import Home

# Per-browser values kept in localStorage, so a reload (or a second tab) re-attaches to the same job.
SESSION_DEFAULT = {"owner": None, "job_id": None, "run": None, "data": None}


@dataclass
class Studio:
    """The app-wide objects (created once in ``build_app``) plus the shared components, filled as tabs build.

    Args:
        home: the studio home (models, uploads, runs).
        manager: the one JobManager; it owns every background thread.
        public: a shared demo: stricter upload limits, no typed hub ids or local folders.
        hardware: the machine, read once.
    """

    home: Home
    manager: Any
    public: bool
    hardware: Hardware
    models: "ModelCache" = field(default_factory=lambda: ModelCache())
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def exports(self) -> Path:
        return self.home.root / "exports"

    def __getitem__(self, name: str) -> Any:
        return self.shared[name]


class ModelCache:
    """The last loaded playground model, shared by sessions: loading costs seconds, memory is scarce.

    Events that use it run with ``concurrency_id="playground"`` and a limit of 1, so one generation at a
    time touches a model (a base/tuned comparison toggles adapters on the same weights).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._value: Any = None

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:
            if self._key != key:
                self._key, self._value = None, None  # free the old model before loading the next
                self._value = load()
                self._key = key
            return self._value

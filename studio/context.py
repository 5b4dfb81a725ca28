"""What every tab needs: the home, the one job manager, the public policy, the machine, and the components
tabs share; plus the checks that keep one visitor's runs and files away from another's."""
from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.runs import RunDir, list_runs
from core.hardware import Hardware
from core.home import Home
from core.public import PublicPolicy
from core.uploads import owns_path, session_export_dir

# Per-browser values kept in localStorage, so a reload (or a second tab) re-attaches to the same job.
SESSION_DEFAULT = {"owner": None, "job_id": None, "run": None, "data": None}
# The server makes owner ids (``new_owner``); anything else found in a browser's storage is replaced.
OWNER_FORMAT = re.compile(r"[0-9a-f]{16,64}")
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def new_owner() -> str:
    """A fresh random owner id for a browser: 128 bits, so nobody can guess another visitor's."""
    return secrets.token_hex(16)


def with_owner(session: dict | None) -> dict:
    """The session with a valid owner id: its own, or a new one (and then no job or run from storage).

    The page-load handler gives a new browser its id, but a handler the visitor triggers within the first moments
    can still receive the session as it was before that (no owner) and would write it back without one; so every
    handler that writes the session, or submits a job, passes it through here.
    An id the server did not make (edited storage, an older format) is replaced, and with it go the job and
    run it pointed at: a visitor never chooses their own id.
    """
    session = {**SESSION_DEFAULT, **(session if isinstance(session, dict) else {})}
    if owner_of(session) is None:
        session = {**SESSION_DEFAULT, "data": session.get("data"), "owner": new_owner()}
    return session


def owner_of(session: dict | None) -> str | None:
    """The session's owner id when it has the shape the server gives out, else None."""
    owner = (session or {}).get("owner")
    return owner if isinstance(owner, str) and OWNER_FORMAT.fullmatch(owner) else None


@dataclass
class Studio:
    """The app-wide objects (created once in ``build_app``) plus the shared components, filled as tabs build.

    Args:
        home: the studio home (models, uploads, runs).
        manager: the one JobManager; it owns every background thread.
        policy: the public-demo policy; with ``policy.enabled`` False everything is allowed (a local studio).
        hardware: the machine, read once.
    """

    home: Home
    manager: Any
    policy: PublicPolicy
    hardware: Hardware
    models: "ModelCache" = field(default_factory=lambda: ModelCache())
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def public(self) -> bool:
        return self.policy.enabled

    def __getitem__(self, name: str) -> Any:
        return self.shared[name]

    def export_dir(self, owner: str | None) -> Path:
        """Where exports go: the visitor's own secret folder in public mode, the home's exports folder if not."""
        if self.public:
            return session_export_dir(self.home, owner or "")
        folder = self.home.root / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def runs_of(self, owner: str | None) -> list[RunDir]:
        """The runs this visitor may see: all of them locally, only their own jobs' runs in public mode."""
        runs = list_runs(self.home.runs)
        if not self.public:
            return runs
        mine = {str(s.run_dir) for s in self.manager.jobs(owner)} if owner else set()
        return [r for r in runs if str(r.path) in mine]

    def run_for(self, owner: str | None, run_path: str | None) -> RunDir | None:
        """The run named by a path from the browser, if this visitor may see it; never a folder outside the runs."""
        if not run_path:
            return None
        return next((r for r in self.runs_of(owner) if str(r.path) == str(run_path)), None)

    def may_read(self, owner: str | None, path: str | None) -> bool:
        """Whether data at ``path`` (from the browser) may be read: in public mode only the visitor's own
        uploads and the bundled examples; locally any path (it is the user's own machine)."""
        if not path:
            return False
        if not self.public:
            return True
        try:
            if Path(path).resolve().is_relative_to(EXAMPLES.resolve()):
                return True
        except (OSError, ValueError):
            return False
        return bool(owner) and owns_path(self.home, owner, path)


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

"""What every tab needs: the home, the one job manager, the public policy, the machine, the components tabs
share (typed: each tab's ``build()`` returns a small dataclass of its components, kept here), and the checks that
keep one visitor's runs and files away from another's."""
from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from core.config import ConfigError, JobConfig
from core.hardware import Hardware
from core.home import Home
from core.plan import JobPlan, PlanCache, plan_job
from core.public import PublicPolicy
from core.runs import RunDir, list_runs
from core.uploads import owns_path, session_export_dir

from .form import JobValues, build_config

if TYPE_CHECKING:  # the tabs import this module; their component classes are only named here
    from .tab_data import DataTab
    from .tab_evaluate import EvaluateTab
    from .tab_export import ExportTab
    from .tab_model import ModelTab
    from .tab_settings import SettingsTab
    from .tab_train import TrainTab

# Per-browser values kept in localStorage, so a reload (or a second tab) re-attaches to the same job.
SESSION_DEFAULT = {"owner": None, "job_id": None, "run": None, "data": None}
# The server makes owner ids (``new_owner``); anything else found in a browser's storage is replaced.
OWNER_FORMAT = re.compile(r"[0-9a-f]{16,64}")
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def new_owner() -> str:
    """A fresh random owner id for a browser: 128 bits, so nobody can guess another visitor's."""
    return secrets.token_hex(16)


class OwnerBook:
    """The owner id given to each open page (gradio's session hash) that came without one.

    The page-load handler gives a new browser its id, but a handler the visitor triggers within the first moments
    (a file dropped at once) receives the session as it was before that, without an id. Both ask this book for
    the page's id, so whichever answers first, the page ends up with one id and its upload in that id's folder.

    Args:
        size: pages remembered (the oldest are forgotten first; by then their page has its id in storage).
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._owners: OrderedDict[str, str] = OrderedDict()

    def owner_for(self, page: str | None) -> str:
        if not page:
            return new_owner()
        with self._lock:
            owner = self._owners.get(page)
            if owner is None:
                owner = self._owners[page] = new_owner()
                while len(self._owners) > self.size:
                    self._owners.popitem(last=False)
            self._owners.move_to_end(page)
            return owner


def with_owner(session: dict | None, page: str | None = None, book: OwnerBook | None = None) -> dict:
    """The session with a valid owner id: its own, or a new one (and then no job or run from storage).

    Every handler that writes the session, or submits a job, passes it through here, with the page's session hash
    and the studio's ``OwnerBook`` so that handlers racing the page load agree on the new id.
    An id the server did not make (edited storage, an older format) is replaced, and with it go the job and
    run it pointed at: a visitor never chooses their own id.

    Args:
        session: the browser's stored session.
        page: gradio's session hash of the page (``gr.Request.session_hash``), when known.
        book: where the page's new id is kept; without it every call makes a new id.
    """
    session = {**SESSION_DEFAULT, **(session if isinstance(session, dict) else {})}
    if owner_of(session) is None:
        owner = book.owner_for(page) if book is not None else new_owner()
        session = {**SESSION_DEFAULT, "data": session.get("data"), "owner": owner}
    return session


def owner_of(session: dict | None) -> str | None:
    """The session's owner id when it has the shape the server gives out, else None."""
    owner = (session or {}).get("owner")
    return owner if isinstance(owner, str) and OWNER_FORMAT.fullmatch(owner) else None


@dataclass
class JobForm:
    """The widgets that together describe a job (spread over the data, model and settings steps).

    Handlers take them as a set of inputs, so gradio passes one ``{component: value}`` dict; ``values`` reads it.
    """

    data: Any  # gr.State: {"choice": DataChoice, "prepared": PreparedData} once data is loaded, else None
    model_choice: Any
    model_custom: Any  # a Textbox, or a State holding "" in public mode (no box to type a path into)
    strategy: Any
    preset: Any
    name: Any
    validation: Any
    numbers: dict[str, Any]  # ADVANCED field name -> gr.Number
    switches: dict[str, Any]  # SWITCHES name -> gr.Dropdown

    def inputs(self) -> set:
        return {self.data, self.model_choice, self.model_custom, self.strategy, self.preset, self.name,
                self.validation, *self.numbers.values(), *self.switches.values()}

    def values(self, got: dict, public: bool) -> JobValues:
        """The job the widgets describe; ``ConfigError`` in words when a step is missing."""
        data = got.get(self.data)
        if not data:
            raise ConfigError(["there is no data yet: load a file or an example in step 1 (fix any errors shown)."])
        model = chosen_model(got.get(self.model_choice), got.get(self.model_custom), public)
        if not model:
            raise ConfigError(["no model is chosen: pick one in step 2."])
        return JobValues(data=data["choice"], model=model, strategy=got.get(self.strategy) or "",
                         preset=got.get(self.preset) or "balanced", name=got.get(self.name),
                         validation=got.get(self.validation),
                         numbers={k: got.get(c) for k, c in self.numbers.items()},
                         switches={k: got.get(c) for k, c in self.switches.items()})


def chosen_model(choice: str | None, custom: str | None, public: bool) -> str:
    """The model the job will use: the typed id/folder when given (never in public mode), else the choice."""
    typed = (custom or "").strip()
    if typed and not public:
        return typed
    return choice or ""


@dataclass
class Studio:
    """The app-wide objects (created once in ``build_app``) plus the components, filled in as the tabs build.

    Args:
        home: the studio home (models, uploads, runs).
        manager: the one JobManager; it owns every background job.
        policy: the public-demo policy; with ``policy.enabled`` False everything is allowed (a local studio).
        hardware: the machine, read once.
    """

    home: Home
    manager: Any
    policy: PublicPolicy
    hardware: Hardware
    models: "ModelCache" = field(default_factory=lambda: ModelCache())
    plans: PlanCache = field(default_factory=PlanCache)
    owners: OwnerBook = field(default_factory=OwnerBook)
    batch_stops: dict = field(default_factory=dict)  # owner id -> Stop for their batch prediction
    session: Any = None  # gr.BrowserState: owner id, current job, current run, data choice (survives reloads)
    data: Any = None  # gr.State: the loaded data
    tabs: Any = None  # gr.Tabs: handlers select a step by its id
    form: JobForm | None = None
    data_tab: "DataTab | None" = None
    model_tab: "ModelTab | None" = None
    settings_tab: "SettingsTab | None" = None
    train_tab: "TrainTab | None" = None
    evaluate_tab: "EvaluateTab | None" = None
    export_tab: "ExportTab | None" = None

    def own(self, session: dict | None, request=None) -> dict:
        """``with_owner`` for this page (``request``: the handler's ``gr.Request``, or None)."""
        return with_owner(session, getattr(request, "session_hash", None), self.owners)

    def plan(self, values: JobValues, n_train: int | None = None) -> JobPlan:
        """The job the widgets describe as it will run, within the public caps (what the run's config.yaml will
        hold): planned once to count the training rows, then again with the caps (cached data: milliseconds)."""
        config = build_config(values)
        limits = self.policy.data_limits()
        plan = plan_job(config, self.home, self.hardware, cache=self.plans, limits=limits)
        if not self.public or plan.data is None or plan.data.train is None:
            return plan
        clamped = self.policy.clamp(config, n_train=len(plan.data.train))
        return plan_job(clamped, self.home, self.hardware, cache=self.plans, limits=limits)

    def submittable(self, values: JobValues) -> JobConfig:
        """The job to hand to the manager: the widgets' settings within the public caps (presets are filled by
        the run itself, from the same plan the page previews)."""
        config = build_config(values)
        if not self.public:
            return config
        plan = plan_job(config, self.home, self.hardware, cache=self.plans, limits=self.policy.data_limits())
        n_train = len(plan.data.train) if plan.data is not None and plan.data.train is not None else None
        return self.policy.clamp(config, n_train=n_train)

    @property
    def public(self) -> bool:
        return self.policy.enabled

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

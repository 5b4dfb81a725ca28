"""One plan per job: the model found, the data read and checked with that model's tokenizer, every empty setting
filled from the data and the machine, and every problem (settings, model, data) gathered at once.

The runner trains the plan, ``studio eval`` scores with it, and the page's settings step previews it, so the YAML
the page shows is byte for byte the ``config.yaml`` the run saves. The page keeps a ``PlanCache`` so that
changing a setting re-plans in milliseconds: reading the data and loading a tokenizer happen once per file and
model, and again only when the file changes.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import JobConfig
from .hardware import Hardware
from .home import Home
from .presets import fill_presets

Progress = Callable[[str], None]


@dataclass
class JobPlan:
    """The job as it will run.

    Attributes:
        config: the job with every preset filled in (what the run's config.yaml holds), or the job as given when
            there are problems.
        data: the ``core.data.PreparedData`` (None when the settings were too broken to read the data).
        model: the ``core.models.ResolvedModel`` (None when the model cannot be found).
        tokenizer: the model's tokenizer for text tasks, else None.
        hardware: the machine the plan was made for.
        setting_problems: what is wrong with the settings, each a sentence with its fix.
        model_problem: why the model cannot be used (and how to get it), or None.
    """

    config: JobConfig
    data: Any = None
    model: Any = None
    tokenizer: Any = None
    hardware: Hardware | None = None
    setting_problems: list[str] = field(default_factory=list)
    model_problem: str | None = None

    @property
    def problems(self) -> list[str]:
        """Every blocking problem: the settings', the model's and the data's, each a sentence with its fix."""
        data = [str(p) for p in self.data.report.errors] if self.data is not None else []
        return self.setting_problems + ([self.model_problem] if self.model_problem else []) + data

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe_problems(self) -> str:
        """The blocking problems as text, the data's warnings after its errors (they often explain them)."""
        parts = [f"- {p}" for p in self.setting_problems]
        if self.model_problem:
            parts.append(f"- {self.model_problem}")
        if self.data is not None and not self.data.report.ok:
            from .data import DataError
            parts.append(str(DataError(self.data.report.errors, self.data.report.warnings)))
        return "\n".join(parts)

    @property
    def warnings(self) -> list:
        """The data's warnings (``core.data.Problem``): training goes ahead, but the user should read them."""
        return list(self.data.report.warnings) if self.data is not None else []


class PlanCache:
    """Remembers loaded tokenizers and read data between plans (the page re-plans on every change).

    Entries are keyed by everything that changes their result, files by their size and modification time, so a
    cached entry is always what a fresh read would give.

    Args:
        size: how many data sets and tokenizers to keep.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple, tuple] = OrderedDict()
        self._data: OrderedDict[tuple, Any] = OrderedDict()

    def model(self, key: tuple, load: Callable[[], tuple]) -> tuple:
        return self._get(self._models, key, load)

    def data(self, key: tuple, load: Callable[[], Any]) -> Any:
        return self._get(self._data, key, load)

    def _get(self, store: OrderedDict, key: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in store:
                store.move_to_end(key)
                return store[key]
        value = load()  # outside the lock: a slow read must not block other sessions' cached plans
        with self._lock:
            store[key] = value
            while len(store) > self.size:
                store.popitem(last=False)
        return value


def plan_job(config: JobConfig, home: Home, hardware: Hardware, *, data_path: str | None = None,
             cache: PlanCache | None = None, limits=None, progress: Progress | None = None,
             task_from_data: bool = False) -> JobPlan:
    """Plan ``config`` on ``hardware``: find the model, read the data with its tokenizer, fill the presets.

    Never raises for a problem the user can fix: the settings', the model's and the data's problems all come back
    together on ``JobPlan.problems``.

    Args:
        config: the job as the user set it (or a run's filled config.yaml: filling keeps every value set).
        home: the studio home (model cache).
        hardware: the machine the job runs on.
        data_path: score on this file instead of the job's validation data (``studio eval --data``).
        cache: a ``PlanCache`` to reuse tokenizers and data read before (the page); None reads afresh.
        limits: ``core.data.DataLimits`` for untrusted uploads; the generous defaults when None.
        progress: called with a sentence before each slow step (finding or converting a model, reading data).
        task_from_data: the config's task was read from its data (``with_detected_task``): the data is read the
            same way again, so its reasons are detection's, not "as you chose".
    """
    say = progress or (lambda message: None)
    plan = JobPlan(config=config, hardware=hardware, setting_problems=config.problems())
    if not str(config.data.path).strip() or config.task not in _known_tasks():
        return plan  # nothing to read: the settings' problems say what is missing
    plan.model, plan.tokenizer, plan.model_problem = _model(config, home, cache, say)
    say("Reading and checking the data.")
    plan.data = _data(config, home, plan.tokenizer, data_path, cache, limits, task_from_data)
    if not plan.ok or plan.data.train is None:
        return plan
    filled = fill_presets(config, len(plan.data.train), hardware, _token_lengths(plan.data.summary))
    plan.setting_problems = filled.problems()
    plan.config = filled
    return plan


def with_detected_task(config: JobConfig, home: Home, limits=None) -> tuple[JobConfig, list[str]]:
    """A job whose config names no task, for the task its data is for (as the page detects it on upload), with
    that task's default model and strategy where the config named none; and the problems when the data cannot
    say (unreadable, or columns that fit no task). A config that names its task comes back as it is.

    Args:
        config: the job as the user wrote it.
        home: the studio home (where an uploaded archive is unpacked).
        limits: ``core.data.DataLimits`` for untrusted uploads; the generous defaults when None.
    """
    if config.task is not None or not str(config.data.path).strip():
        return config, []
    from .data import load_data

    found = load_data(config.data.path, columns=config.data.columns or None, limits=limits, home=home)
    if found.task is None:  # a task found with other problems goes on: the job's data check reports them
        said = " ".join(f"{p.message} {p.fix}".strip() for p in found.report.errors)
        if any(p.code in ("unknown_column", "unknown_role") for p in found.report.errors):
            return config, [f"data.columns: {said}"]  # a column the config names is not there: that is the problem
        if any(p.code == "no_text" for p in found.report.errors):
            return config, [f"data: {said}"]  # no task would fit: naming one would not help
        return config, [f"the config names no task, and its data does not say which: {said} Or name the task in "
                        f"the config, for example `task: text-classification` (one of {', '.join(_known_tasks())})."]
    return config.for_task(found.task), []


def _known_tasks() -> tuple[str, ...]:
    from .tasks import TASKS
    return TASKS


def resolve_for(config: JobConfig, home: Home, progress: Progress | None = None):
    """The job's model (``ResolvedModel``), carrying the job's trust_remote_code setting to every loader.

    Raises:
        ModelUnavailable: the model cannot be found here; the message says how to get it.
    """
    from .models import resolve_model

    resolved = resolve_model(config.model, home, task=config.task, progress=progress)
    return dataclasses.replace(resolved, trust_remote_code=config.trust_remote_code)


def _model(config: JobConfig, home: Home, cache: PlanCache | None, say: Progress) -> tuple[Any, Any, str | None]:
    """(resolved model, tokenizer or None, problem or None)."""
    from .models import ModelUnavailable, load_tokenizer

    def load() -> tuple:
        say(f"Finding the model '{config.model}'.")
        resolved = resolve_for(config, home, say)
        tokenizer = load_tokenizer(resolved) if _needs_tokenizer(config, resolved) else None
        return resolved, tokenizer

    key = ("model", str(config.model).strip(), config.task, config.trust_remote_code, str(home.models))
    try:
        resolved, tokenizer = cache.model(key, load) if cache is not None else load()
    except ModelUnavailable as exc:
        return None, None, str(exc)
    return resolved, tokenizer, None


def _needs_tokenizer(config: JobConfig, resolved) -> bool:
    from .tasks import get_task
    return resolved.kind == "transformers" and get_task(config.task).modality == "text"


def _data(config: JobConfig, home: Home, tokenizer, data_path: str | None, cache: PlanCache | None, limits,
          task_from_data: bool = False):
    from .data import load_data

    d = config.data
    validation = data_path or d.validation_path

    def load():
        return load_data(d.path, task=None if task_from_data else config.task, columns=d.columns or None,
                         validation_path=validation, validation_fraction=d.validation_fraction,
                         seed=config.train.seed, tokenizer=tokenizer, max_length=config.train.max_length,
                         limits=limits, home=home)

    if cache is None:
        return load()
    key = ("data", _file_key(d.path), config.task, task_from_data, tuple(sorted((d.columns or {}).items())),
           _file_key(validation), d.validation_fraction, config.train.seed,
           (str(config.model).strip(), tokenizer is None), config.train.max_length, limits, str(home.root))
    return cache.data(key, load)


def _file_key(path: str | None) -> tuple:
    """A path with its size and modification time, so a changed file is read again."""
    if not path:
        return (None,)
    p = Path(str(path)).expanduser()
    try:
        stat = p.stat()
    except OSError:
        return (str(p),)
    return (str(p.resolve()), stat.st_size, stat.st_mtime_ns)


def _token_lengths(summary: dict) -> dict | None:
    value = summary.get("token_lengths")
    return value if isinstance(value, dict) else None


def image_side(config: JobConfig, data, resolved) -> int | None:
    """The input side an image job will train at, chosen from its training images as the recipes choose it (the
    memory estimate's input for image jobs); None for other tasks, or when the data or the model is not at hand."""
    from .tasks import get_task

    train = getattr(data, "train", None)
    if resolved is None or get_task(config.task).modality != "image" or train is None \
            or "image" not in train.column_names:
        return None
    from .engine.classify.features import choose_image_size
    from .models.backbones import native_image_side

    return choose_image_size(list(train["image"]), native_image_side(resolved))

"""Public mode: the caps and rules for a studio anyone on the internet can use (``--public``, or a Space).

The policy is plain data (a frozen dataclass) with four verbs the UI calls: ``data_limits`` for uploads,
``check_job`` before a job is queued, ``clamp`` to bound its steps and minutes, and ``expire`` on a timer
to delete old uploads and runs. ``allowed_paths``/``blocked_paths`` say what Gradio may serve. With
``enabled`` False (a local studio) every verb lets everything through, so the UI can call them always.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .config import ConfigError, JobConfig
from .data.limits import DataLimits
from .home import Home
from .runs import FINAL_STATUSES
from .strategies import get_strategy
from .uploads import expire_runs, expire_unpacked, expire_uploads, owns_path

TRUE_WORDS = ("1", "true", "yes", "on")
ENV_PREFIX = "STUDIO_PUBLIC_"


@dataclass(frozen=True)
class PublicPolicy:
    """Caps for a public demo. Every cap can be set by an environment variable ``STUDIO_PUBLIC_<FIELD>``.

    Args:
        enabled: public mode is on; False lets everything through (a local studio).
        max_upload_bytes: largest uploaded file.
        max_rows: most rows in an uploaded table.
        max_images: most images in an uploaded image set.
        max_steps: most optimizer steps in one job (LoRA, QLoRA and full fine-tuning).
        max_minutes: most minutes of training in one job (every strategy).
        max_active_per_visitor: jobs one visitor may have queued or running at once.
        max_jobs_per_visitor: jobs one visitor may submit while the server runs.
        max_queue: jobs waiting in the queue (all visitors) before new ones are refused.
        upload_max_age_s: uploads and exports older than this are deleted.
        run_max_age_s: finished runs older than this are deleted.
    """

    enabled: bool = True
    max_upload_bytes: int = 50 * 1024**2
    max_rows: int = 20_000
    max_images: int = 5_000
    max_steps: int = 300
    max_minutes: float = 10.0
    max_active_per_visitor: int = 1
    max_jobs_per_visitor: int = 10
    max_queue: int = 8
    upload_max_age_s: float = 6 * 3600.0
    run_max_age_s: float = 24 * 3600.0

    @classmethod
    def from_env(cls, flag: bool = False, environ: Mapping[str, str] | None = None) -> "PublicPolicy":
        """The policy for this process: public when ``flag`` (``--public``), ``$STUDIO_PUBLIC`` or ``$SPACE_ID``.

        Args:
            flag: the ``--public`` command-line switch.
            environ: the environment (``os.environ`` when None).
        Raises:
            ConfigError: a ``STUDIO_PUBLIC_*`` variable is not a positive number.
        """
        env = os.environ if environ is None else environ
        enabled = bool(flag) or bool(env.get("SPACE_ID")) or env.get("STUDIO_PUBLIC", "").lower() in TRUE_WORDS
        values, problems = {}, []
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if f.name == "enabled" or raw is None:
                continue
            try:
                number = float(raw)
            except ValueError:
                number = math.nan
            if not number > 0 or math.isinf(number):
                problems.append(f"{ENV_PREFIX + f.name.upper()}={raw!r}: give a positive number.")
                continue
            values[f.name] = int(number) if f.type in (int, "int") else number
        if problems:
            raise ConfigError(problems)
        return cls(enabled=enabled, **values)

    # --- uploads ----------------------------------------------------------------------------------
    def data_limits(self) -> DataLimits:
        """The ``DataLimits`` for reading uploads: the public caps when enabled, the generous defaults if not."""
        if not self.enabled:
            return DataLimits()
        base = DataLimits.public()
        return dataclasses.replace(base, max_bytes=min(base.max_bytes, self.max_upload_bytes),
                                   max_rows=min(base.max_rows, self.max_rows),
                                   max_images=min(base.max_images, self.max_images))

    # --- jobs -------------------------------------------------------------------------------------
    def check_job(self, config: JobConfig, owner: str | None, manager) -> list[str]:
        """Every reason this visitor may not run this job here, as sentences; empty when it may.

        Args:
            config: the job as the visitor set it.
            owner: the visitor's session id (the one jobs are submitted with).
            manager: the ``core.jobs.JobManager`` (its home and its jobs).
        """
        if not self.enabled:
            return []
        problems = _model_problems(config)
        problems += _path_problems(config, owner, manager.home)
        if config.trust_remote_code:
            problems.append("trust_remote_code cannot be turned on in the public demo: it would run code from "
                            "the model's repository on this server. Choose a catalog model.")
        problems += self._load_problems(owner, manager)
        return problems

    def require_job(self, config: JobConfig, owner: str | None, manager) -> None:
        """Raise ``ConfigError`` listing every problem ``check_job`` finds (the UI shows it as it is)."""
        problems = self.check_job(config, owner, manager)
        if problems:
            raise ConfigError(problems)

    def clamp(self, config: JobConfig, n_train: int | None = None) -> JobConfig:
        """A copy of the job within the caps: at most ``max_steps`` steps and ``max_minutes`` minutes.

        Args:
            config: the job.
            n_train: training rows, when known, to cap jobs set by epochs too (without it only an explicit
                ``max_steps`` is lowered; ``max_minutes`` bounds every job either way).
        """
        if not self.enabled:
            return config
        t = config.train
        minutes = min(t.max_minutes or self.max_minutes, self.max_minutes)
        steps = t.max_steps
        if not _on_features(config.strategy):  # the Trainer's max_steps; head-only epochs take seconds
            if steps is not None:
                steps = min(steps, self.max_steps)
            elif n_train is not None and _estimated_steps(config, n_train) > self.max_steps:
                steps = self.max_steps
        train = dataclasses.replace(t, max_steps=steps, max_minutes=minutes, threads=None)
        return dataclasses.replace(config, train=train, trust_remote_code=False)

    def _load_problems(self, owner: str | None, manager) -> list[str]:
        if not owner:
            return ["This browser has no session yet: reload the page and try again."]
        mine = manager.jobs(owner=owner)
        active = [s for s in mine if s.status not in FINAL_STATUSES]
        problems = []
        if len(active) >= self.max_active_per_visitor:
            problems.append(f"You already have {len(active)} job(s) queued or running: wait for it to finish, "
                            "or stop it, before starting another.")
        if len(mine) >= self.max_jobs_per_visitor:
            problems.append(f"You have run {len(mine)} jobs, the most one visitor may run on this public demo. "
                            "Install the studio on your own machine to train without limits.")
        waiting = sum(1 for s in manager.jobs() if s.queue_position is not None)
        if waiting >= self.max_queue:
            problems.append(f"The demo is busy: {waiting} jobs are waiting. Try again in a few minutes.")
        return problems

    # --- serving files and cleaning up --------------------------------------------------------------
    def allowed_paths(self, home: Home) -> list[str]:
        """The folders Gradio may serve: uploads and exports (whose folder names are secret per session)
        and the bundled examples; in a local studio the runs too."""
        folders = [home.uploads, home.root / "exports", _examples_folder()]
        if not self.enabled:
            folders.append(home.runs)
        return [str(Path(f).resolve()) for f in folders]

    def blocked_paths(self, home: Home) -> list[str]:
        """Folders Gradio must never serve, whatever else allows them: the model cache, and in public mode the runs
        (run folder names are timestamps, easy to guess)."""
        folders = [home.models] + ([home.runs] if self.enabled else [])
        return [str(Path(f).resolve()) for f in folders]

    def expire(self, home: Home, manager=None, now: float | None = None) -> dict[str, list[Path]]:
        """Delete uploads, exports and finished runs past their age; what active jobs use is kept.

        Args:
            home: the studio home.
            manager: the job manager, whose queued and running jobs' data and runs are kept.
            now: the current time (tests).
        Returns ``{"uploads": [...], "unpacked": [...], "runs": [...]}``, the folders deleted (nothing when not
        enabled). Unpacked copies of uploaded zips live as long as uploads do.
        """
        if not self.enabled:
            return {"uploads": [], "unpacked": [], "runs": []}
        data, runs = _in_use(manager)
        return {"uploads": expire_uploads(home, self.upload_max_age_s, keep=data, now=now),
                "unpacked": expire_unpacked(home, self.upload_max_age_s, keep=data, now=now),
                "runs": expire_runs(home, self.run_max_age_s, keep=runs, now=now)}

    def describe(self) -> str:
        """One sentence for the UI on what the public demo allows."""
        return (f"Public demo: files up to {self.max_upload_bytes / 2**20:.0f} MiB ({self.max_rows:,} rows or "
                f"{self.max_images:,} images), catalog models only, at most {self.max_steps} steps and "
                f"{self.max_minutes:g} minutes per job, {self.max_active_per_visitor} job at a time; uploads are "
                f"deleted after {self.upload_max_age_s / 3600:g} h and runs after {self.run_max_age_s / 3600:g} h.")


def _model_problems(config: JobConfig) -> list[str]:
    from .catalog import entries_for, get_entry
    from .tasks import models_for

    entry = get_entry(config.model)
    keys = ", ".join(e.key for e in entries_for(config.task)) or "none"
    if entry is None:
        return [f"model '{config.model}' is not in the catalog: the public demo runs catalog models only "
                f"({keys})."]
    if entry.task != models_for(config.task):
        return [f"model '{entry.key}' is a {entry.task} model, not a {config.task} one: choose one of {keys}."]
    if entry.task == config.task and entry.strategies and config.strategy not in entry.strategies:
        return [f"strategy '{config.strategy}' does not apply to {entry.key}: use one of "
                f"{', '.join(entry.strategies)}."]
    return []


def _path_problems(config: JobConfig, owner: str | None, home: Home) -> list[str]:
    problems = []
    for label, path in (("data", config.data.path), ("validation data", config.data.validation_path)):
        if path and not (owner and owns_path(home, owner, path)) and not _is_example(path):
            problems.append(f"The {label} must be a file you uploaded in this session or a bundled example; "
                            "paths on the server cannot be used in the public demo. Upload the file.")
    return problems


def _examples_folder() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "examples"


def _is_example(path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(_examples_folder().resolve())
    except (OSError, ValueError):
        return False


def _estimated_steps(config: JobConfig, n_train: int) -> int:
    from .presets import RECIPES

    # The fewest steps the presets could give (a GPU doubles the batch; chat on a CPU accumulates 2), so a
    # cap is only set where it really shortens the job: max_steps overrides epochs, and could lengthen it.
    t = config.train
    recipe = RECIPES.get((config.task, config.strategy))
    batch = t.batch_size or (2 * recipe.batch_size if recipe else 32)
    accum = t.grad_accum or (2 if config.task == "chat" else 1)
    epochs = t.epochs if t.epochs is not None else (recipe.epochs.get(t.preset, 1) if recipe else 1)
    per_epoch = math.ceil(max(1, n_train) / (min(batch, max(1, n_train)) * accum))
    return max(1, math.ceil(per_epoch * epochs))


def _in_use(manager) -> tuple[list, list]:
    """Data paths and run folders of the manager's queued and running jobs."""
    if manager is None:
        return [], []
    data, runs = [], []
    for snap in manager.jobs():
        if snap.status not in FINAL_STATUSES:
            data += [snap.config.data.path, snap.config.data.validation_path]
            runs.append(snap.run_dir)
    return [p for p in data if p], [r for r in runs if r]


def _on_features(strategy: str) -> bool:
    try:
        return get_strategy(strategy).on_features
    except KeyError:  # an unknown strategy is the config check's to report
        return False

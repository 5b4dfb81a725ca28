"""The job: one typed, nested dataclass that the UI builds, the CLI reruns and a run folder keeps as YAML.

A config validates itself, gathers every problem and raises once with all of them. Fields left as ``None``
are filled from the data by ``core.presets`` when the job starts; the run folder keeps the filled copy so
that ``studio train RUN/config.yaml`` reproduces the run exactly.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .strategies import strategies_for
from .tasks import TASKS, get_task

PRECISIONS = ("fp32", "bf16")
# Experiment trackers train.report_to accepts -> the package each needs. TensorBoard files are always written.
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio", "wandb": "wandb"}
PRESETS = ("quick", "balanced", "thorough")


class ConfigError(ValueError):
    """Every problem found in a job config, each a plain sentence that says what to change."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("The job settings need fixing:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True)
class Setting:
    """What a number setting means and what it may be: the one source for the page's field (label, help, whole
    number or not), the config check and its message.

    Args:
        label: the page's label.
        help: a few words under the field.
        minimum: the smallest value allowed (with ``above``: values must be greater than it).
        maximum: the largest value allowed (with ``below``: values must be smaller than it).
        above: ``minimum`` itself is not allowed.
        below: ``maximum`` itself is not allowed.
        integer: a whole number.
        advanced: shown in the page's Advanced fields (0 there means "the preset decides", except for the seed).
    """

    label: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    below: bool = False
    integer: bool = False
    advanced: bool = True

    def problem(self, name: str, value) -> str | None:
        """The sentence saying what is wrong with ``value`` for the setting ``name``, or None when it is fine."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # empty is the preset's; a wrong type is reported when the config is read
        if not math.isfinite(value):
            return f"{name} is {value}: give a real number ({self.allowed()})."
        low = self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum)
        high = self.maximum is not None and (value >= self.maximum if self.below else value > self.maximum)
        if low and self.above and self.minimum == 0:
            return f"{name} is {value}: it must be greater than 0 (or left empty for the preset)."
        if high and self.above and self.minimum == 0 and not self.below:
            return f"{name} is {value}: that is far beyond anything sensible (at most {_num(self.maximum)})."
        if low or high:
            return f"{name} is {value}: use {self.allowed()}."
        return None

    def allowed(self) -> str:
        """The allowed values in words: "a whole number above 0 and at most 4,096", "a number of at least 0"."""
        kind = "a whole number" if self.integer else "a number"
        low, high = self.minimum, self.maximum
        if low is None or high is None:
            if low is not None:
                return f"{kind} {'above' if self.above else 'of at least'} {_num(low)}"
            return f"{kind} {'below' if self.below else 'of at most'} {_num(high)}" if high is not None else kind
        start = f"above {_num(low)} and" if self.above else f"from {_num(low)} to"
        return f"{kind} {start} {'below' if self.below else ('at most' if self.above else '')} {_num(high)}".replace(
            "  ", " ")


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def setting(default, **meta) -> Any:
    """A dataclass field carrying its ``Setting`` (label, help, bounds) as metadata."""
    return field(default=default, metadata={"setting": Setting(**meta)})


def settings_of(cls) -> dict[str, Setting]:
    """Field name -> ``Setting`` for the fields of a config dataclass that carry one, in field order."""
    return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}


@dataclass
class DataConfig:
    path: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # role -> column, detected when empty
    validation_path: str | None = None
    validation_fraction: float | None = setting(  # chosen from the data size when None
        None, label="Validation share", help="held out to measure the model", minimum=0, maximum=0.9, above=True,
        below=True, advanced=False)


POSITIVE = {"minimum": 0, "above": True}


@dataclass
class TrainConfig:
    preset: str = "balanced"
    epochs: float | None = setting(None, label="Epochs", help="passes over the data", maximum=1000, **POSITIVE)
    max_steps: int | None = setting(None, label="Max steps", help="stop after this many steps (overrides epochs)",
                                    maximum=10_000_000, integer=True, **POSITIVE)
    learning_rate: float | None = setting(None, label="Learning rate", help="e.g. 0.0002", maximum=1.0, **POSITIVE)
    batch_size: int | None = setting(None, label="Batch size", help="rows per step", maximum=4096, integer=True,
                                     **POSITIVE)
    grad_accum: int | None = setting(None, label="Gradient accumulation", help="steps summed before an update",
                                     maximum=1024, integer=True, **POSITIVE)
    max_length: int | None = setting(None, label="Max length (tokens)", help="longer rows are cut",
                                     maximum=131072, integer=True, **POSITIVE)
    seed: int = setting(0, label="Seed", help="same seed, same run", minimum=0, maximum=2**32 - 1, integer=True)
    lora_r: int | None = setting(None, label="LoRA rank", help="adapter size", maximum=1024, integer=True,
                                 **POSITIVE)
    lora_alpha: int | None = setting(None, label="LoRA alpha", help="adapter scale", maximum=4096, integer=True,
                                     **POSITIVE)
    # peft's default; dropout masks cost ~10 % of a CPU step
    lora_dropout: float = setting(0.0, label="LoRA dropout", minimum=0, maximum=1, below=True, advanced=False)
    weight_decay: float = setting(0.0, label="Weight decay", minimum=0, advanced=False)
    warmup_ratio: float = setting(0.05, label="Warm-up share", minimum=0, maximum=1, below=True, advanced=False)
    # preference tuning only (DPO: how far the tuned model may move from the base; ORPO: the weight of the
    # odds-ratio term beside learning the chosen answers); the preset fills it for preference jobs
    beta: float | None = setting(None, label="Preference beta", help="DPO/ORPO: higher stays closer to the base",
                                 maximum=100, **POSITIVE)
    # chat: the base model's own answers to everyday instructions, as a share of the training rows, trained beside
    # them so tuning on a narrow set keeps its general behaviour (core/engine/chat/replay.py); 0 turns it off
    replay: float = setting(0.2, label="General replay share", help="chat: the base's own answers mixed in, so it "
                            "forgets less (0: off)", minimum=0, maximum=1)
    # steps between evaluations; chosen from the run length when None
    eval_every: int | None = setting(None, label="Evaluate every (steps)", maximum=10_000_000, integer=True,
                                     **POSITIVE)
    save_every: int | None = setting(None, label="Save a checkpoint every (steps)", maximum=10_000_000,
                                     integer=True, advanced=False, **POSITIVE)  # steps between checkpoints
    # automatic search (classifiers, regressors): once the report is written, the chosen head is fitted again on
    # the training and validation rows together, so the saved model has learnt from every row the user gave (the
    # report keeps the scores measured before, on rows the model had not seen); only when the validation split
    # was cut from the training file, never with a validation file of the user's own
    refit_all: bool = True
    gradient_checkpointing: bool = False
    compile: bool | None = None  # torch.compile the model; None: the preset decides (long chat runs on CPU)
    precision: str | None = None  # fp32 | bf16 (mixed: bf16 matmuls, fp32 adapters); None: the preset decides
    # torch threads; None leaves one core for the UI on small machines
    threads: int | None = setting(None, label="Threads", maximum=1024, integer=True, advanced=False, **POSITIVE)
    max_minutes: float | None = setting(None, label="Time limit (minutes)", help="stop and keep the model after this",
                                        maximum=100_000, **POSITIVE)  # stop (keeping what was trained) after this
    # trackers the Trainer also logs to (mlflow, trackio, wandb); TensorBoard files are written for every run
    report_to: list[str] = field(default_factory=list)


@dataclass
class JobConfig:
    task: str | None = None  # None: read from the data when the job starts (``core.plan.with_detected_task``)
    model: str | None = None  # None: the task's offline default (SmolLM2 for chat, MiniLM for text, ...)
    strategy: str | None = None  # None: the task's default (auto for classifiers, LoRA for chat)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str | None = None  # a label for the run list; the run folder name is made from it
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.task is None:  # the model and strategy follow the task, once the data has said which it is
            return
        if self.model is None:
            self.model = _default_model(self.task)
        if self.strategy is None:
            self.strategy = _task_strategy(self.task)

    def for_task(self, task: str) -> "JobConfig":
        """This job for ``task`` (the one its data was found to be for): a model and strategy left unset become
        that task's defaults."""
        return dataclasses.replace(self, task=task)

    def problems(self) -> list[str]:
        """Every problem with these settings, as sentences a user can act on."""
        out: list[str] = []
        if self.task is None:
            pass  # read from the data when the job starts; its model and strategy are checked then
        elif self.task not in TASKS:
            out.append(f"task '{self.task}' is unknown: use one of {', '.join(TASKS)}.")
        else:
            allowed = strategies_for(self.task)
            if self.strategy not in allowed:
                out.append(
                    f"strategy '{self.strategy}' does not apply to {self.task}: use one of {', '.join(allowed)}."
                )
        if self.model is not None and not str(self.model).strip():
            out.append("model is empty: name a catalog model (see `studio models`), a hub id or a local folder.")
        if not str(self.data.path).strip():
            out.append("data.path is empty: give a CSV/JSONL/Excel/Parquet file, an image folder or a zip.")
        for prefix, section in (("data", self.data), ("train", self.train)):
            for name, meta in settings_of(type(section)).items():
                problem = meta.problem(f"{prefix}.{name}", getattr(section, name))
                if problem:
                    out.append(problem)
        t = self.train
        if t.preset not in PRESETS:
            out.append(f"train.preset '{t.preset}' is unknown: use one of {', '.join(PRESETS)}.")
        out += _tracker_problems(t.report_to)
        if t.precision is not None and t.precision not in PRECISIONS:
            out.append(f"train.precision is '{t.precision}': use one of {', '.join(PRECISIONS)} (or leave it empty "
                       "to let the studio choose for this machine).")
        return out

    def validate(self) -> "JobConfig":
        """Raise ``ConfigError`` listing every problem; return self when there are none."""
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    # --- YAML round trip -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "JobConfig":
        """Build a config from plain data, reporting unknown keys and wrong types all at once."""
        problems: list[str] = []
        config = _build(cls, raw or {}, "", problems)
        if problems:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_yaml(cls, text: str) -> "JobConfig":
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([f"the config is not valid YAML: {exc}"]) from None
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(["the config must be a mapping of keys (task, model, strategy, data, train)."])
        return cls.from_dict(raw or {})

    @classmethod
    def load(cls, path: str | Path) -> "JobConfig":
        """Read a config file; its relative paths are read from the file's own folder (see ``with_paths_from``)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError([f"no config file at {path}: give the path of a config.yaml."])
        return cls.from_yaml(path.read_text(encoding="utf-8")).with_paths_from(path.resolve().parent)

    def with_paths_from(self, folder: Path) -> "JobConfig":
        """A copy whose data paths (and a model given as a path) are absolute: ``~`` expanded, a relative path
        read from ``folder``, or from the working directory when only it has the file. A run folder then keeps
        absolute paths, so its config.yaml reruns from anywhere."""
        data = dataclasses.replace(self.data, path=_absolute(self.data.path, folder),
                                   validation_path=_absolute(self.data.validation_path, folder))
        model = _absolute(self.model, folder) if str(self.model).startswith(("./", "../", "~", ".\\")) \
            else self.model
        return dataclasses.replace(self, data=data, model=model)

    def with_overrides(self, assignments: list[str]) -> "JobConfig":
        """Apply ``key.sub=value`` strings (values parsed as YAML scalars), e.g. ``train.epochs=3``."""
        raw = self.to_dict()
        problems = []
        for item in assignments:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                problems.append(f"'{item}' is not key=value: write it like train.epochs=3.")
                continue
            parts = key.strip().split(".")
            node = raw
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    problems.append(f"'{key}' does not name a setting: '{part}' has no sub-settings.")
                    break
                node = node[part]
            else:
                node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
        if problems:
            raise ConfigError(problems)
        if raw.get("task") != self.task:
            # another task: a model and strategy that were only the old task's defaults follow the new task
            if raw.get("model") == self.model == _default_model(self.task):
                raw["model"] = None
            if raw.get("strategy") == self.strategy == _task_strategy(self.task):
                raw["strategy"] = None
        return type(self).from_dict(raw)


def _task_strategy(task: str) -> str:
    """The task's default strategy; an unknown task is reported by problems(), its strategy is then moot."""
    try:
        return get_task(task).default_strategy
    except KeyError:
        return "lora"


def _default_model(task: str | None) -> str | None:
    """The catalog's offline default for ``task``; an unknown task gets the chat default (problems() reports the
    task); None while the task is not known yet."""
    from .catalog import default_for

    if task is None:
        return None
    try:
        return default_for(task).key
    except KeyError:
        return default_for("chat").key


def _tracker_problems(report_to: list[str]) -> list[str]:
    """Unknown trackers, and known ones whose package is missing (the Trainer would fail on them mid-start)."""
    import importlib.util

    out = []
    for name in report_to or []:
        if name not in TRACKERS:
            out.append(f"train.report_to has '{name}': use any of {', '.join(TRACKERS)} (TensorBoard files are "
                       "written for every run anyway).")
        elif importlib.util.find_spec(TRACKERS[name]) is None:
            out.append(f"train.report_to has '{name}', but the {TRACKERS[name]} package is not installed here: "
                       f"install it (pip install {TRACKERS[name]}) or remove '{name}' from train.report_to.")
    return out


def _absolute(path: str | None, folder: Path) -> str | None:
    if not path or not str(path).strip():
        return path
    given = Path(str(path).strip()).expanduser()
    if given.is_absolute():
        return str(given)
    beside, here = folder / given, Path.cwd() / given
    chosen = here if not beside.exists() and here.exists() else beside
    return str(chosen.resolve())


def _build(cls, raw: dict, prefix: str, problems: list[str]):
    if not isinstance(raw, dict):
        problems.append(f"'{prefix.rstrip('.')}' must be a mapping of settings.")
        return cls()
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            problems.append(f"unknown setting '{prefix}{key}': known ones are {', '.join(sorted(known))}.")
    kwargs = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, value or {}, f"{prefix}{f.name}.", problems)
        else:
            kwargs[f.name] = _coerce(value, hint, f"{prefix}{f.name}", problems)
    return cls(**kwargs)


def _coerce(value, hint, name: str, problems: list[str]):
    """Check a YAML value against a field's type; ints are accepted where floats are expected."""
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        problems.append(f"{name} cannot be empty.")
        return value
    if text.startswith("list"):
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{name} must be a name or a list of names, like [mlflow] (got {value!r}).")
            return []
        return [v.strip().lower() for v in values if v.strip()]
    if "dict" in text:
        if not isinstance(value, dict):
            problems.append(f"{name} must be a mapping like {{prompt: question, response: answer}}.")
            return {}
        return {str(k): str(v) for k, v in value.items()}
    if text.startswith("bool") or hint is bool:
        if not isinstance(value, bool):
            problems.append(f"{name} must be true or false, not {value!r}.")
        return value
    if "float" in text:
        if isinstance(value, str):
            value = _number(value)  # YAML 1.1 reads 2e-4 (no dot) as text
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{name} must be a number, not {value!r}.")
            return None
        return float(value)
    if "int" in text:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            problems.append(f"{name} must be a whole number, not {value!r}.")
            return None
        return value
    if "str" in text:
        if isinstance(value, (dict, list)):
            problems.append(f"{name} must be text, not {type(value).__name__}.")
            return None
        return str(value)
    return value


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text

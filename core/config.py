"""The job: one typed, nested dataclass that the UI builds, the CLI reruns and a run folder keeps as YAML.

A config validates itself, gathers every problem and raises once with all of them. Fields left as ``None``
are filled from the data by ``core.presets`` when the job starts; the run folder keeps the filled copy so
that ``studio train RUN/config.yaml`` reproduces the run exactly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

TASKS = ("chat", "text-classification", "image-classification")
PRECISIONS = ("fp32", "bf16")
STRATEGIES_BY_TASK = {
    "chat": ("qlora", "lora", "full"),
    "text-classification": ("head-only", "lora", "full"),
    "image-classification": ("head-only", "lora", "full"),
}
PRESETS = ("quick", "balanced", "thorough")


class ConfigError(ValueError):
    """Every problem found in a job config, each a plain sentence that says what to change."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("The job settings need fixing:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass
class DataConfig:
    path: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # role -> column, detected when empty
    validation_path: str | None = None
    validation_fraction: float | None = None  # chosen from the data size when None


@dataclass
class TrainConfig:
    preset: str = "balanced"
    epochs: float | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    max_length: int | None = None
    seed: int = 0
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float = 0.0  # peft's default; dropout masks cost ~10 % of a CPU step
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    eval_every: int | None = None  # steps between evaluations; chosen from the run length when None
    save_every: int | None = None  # steps between checkpoints for resume
    gradient_checkpointing: bool = False
    compile: bool | None = None  # torch.compile the model; None: the preset decides (long chat runs on CPU)
    precision: str | None = None  # fp32 | bf16 (mixed: bf16 matmuls, fp32 adapters); None: the preset decides
    threads: int | None = None  # torch threads; None leaves one core for the UI on small machines
    max_minutes: float | None = None  # stop (keeping what was trained) after this long


@dataclass
class JobConfig:
    task: str = "chat"
    model: str = "smollm2-135m-instruct"
    strategy: str = "lora"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str | None = None  # a label for the run list; the run folder name is made from it
    trust_remote_code: bool = False

    def problems(self) -> list[str]:
        """Every problem with these settings, as sentences a user can act on."""
        out: list[str] = []
        if self.task not in TASKS:
            out.append(f"task '{self.task}' is unknown: use one of {', '.join(TASKS)}.")
        else:
            allowed = STRATEGIES_BY_TASK[self.task]
            if self.strategy not in allowed:
                out.append(
                    f"strategy '{self.strategy}' does not apply to {self.task}: use one of {', '.join(allowed)}."
                )
        if not str(self.model).strip():
            out.append("model is empty: name a catalog model (see `studio models`), a hub id or a local folder.")
        if not str(self.data.path).strip():
            out.append("data.path is empty: give a CSV/JSONL/Excel/Parquet file, an image folder or a zip.")
        frac = self.data.validation_fraction
        if frac is not None and not 0.0 < frac < 0.9:
            out.append(f"data.validation_fraction is {frac}: use a number between 0.01 and 0.5, or leave it empty.")
        t = self.train
        if t.preset not in PRESETS:
            out.append(f"train.preset '{t.preset}' is unknown: use one of {', '.join(PRESETS)}.")
        _positive(out, "train.epochs", t.epochs, upper=1000)
        _positive(out, "train.max_steps", t.max_steps, upper=10_000_000)
        _positive(out, "train.learning_rate", t.learning_rate, upper=1.0)
        _positive(out, "train.batch_size", t.batch_size, upper=4096)
        _positive(out, "train.grad_accum", t.grad_accum, upper=1024)
        _positive(out, "train.max_length", t.max_length, upper=131072)
        _positive(out, "train.lora_r", t.lora_r, upper=1024)
        _positive(out, "train.lora_alpha", t.lora_alpha, upper=4096)
        _positive(out, "train.eval_every", t.eval_every, upper=10_000_000)
        _positive(out, "train.save_every", t.save_every, upper=10_000_000)
        _positive(out, "train.threads", t.threads, upper=1024)
        _positive(out, "train.max_minutes", t.max_minutes, upper=100_000)
        if not 0.0 <= t.lora_dropout < 1.0:
            out.append(f"train.lora_dropout is {t.lora_dropout}: use a number from 0 to 0.5.")
        if not 0.0 <= t.warmup_ratio < 1.0:
            out.append(f"train.warmup_ratio is {t.warmup_ratio}: use a number from 0 to 0.3.")
        if t.weight_decay < 0:
            out.append(f"train.weight_decay is {t.weight_decay}: it cannot be negative.")
        if t.precision is not None and t.precision not in PRECISIONS:
            out.append(f"train.precision is '{t.precision}': use one of {', '.join(PRECISIONS)} (or leave it empty "
                       "to let the studio choose for this machine).")
        if t.seed < 0:
            out.append(f"train.seed is {t.seed}: use 0 or a positive whole number.")
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
        path = Path(path)
        if not path.is_file():
            raise ConfigError([f"no config file at {path}: give the path of a config.yaml."])
        return cls.from_yaml(path.read_text(encoding="utf-8"))

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
        return type(self).from_dict(raw)


def _positive(out: list[str], name: str, value, upper: float) -> None:
    if value is None:
        return
    if value <= 0:
        out.append(f"{name} is {value}: it must be greater than 0 (or left empty for the preset).")
    elif value > upper:
        out.append(f"{name} is {value}: that is far beyond anything sensible (at most {upper:g}).")


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

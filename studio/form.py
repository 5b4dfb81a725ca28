"""The one place where the page's widgets become a ``JobConfig``.

Every number arrives from a ``gr.Number``/``gr.Slider`` (already a number; 0 means the preset decides, except
where 0 is itself a value, such as the seed), every choice from a ``gr.Radio``/``gr.Dropdown``. Nothing is parsed
from text. Which number fields the page shows, their labels, help and bounds come from the ``Setting`` metadata
on ``core.config.TrainConfig``, the same source as the config's own checks.
"""
from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from typing import Any

from core.config import PRECISIONS, DataConfig, JobConfig, Setting, TrainConfig, settings_of

# The advanced number fields, in TrainConfig's field order, with their metadata.
ADVANCED: dict[str, Setting] = {name: meta for name, meta in settings_of(TrainConfig).items() if meta.advanced}
# Fields whose empty value is not "the preset decides" (the seed's 0 is a seed): 0 is kept as a value there.
ZERO_IS_A_VALUE = frozenset(f.name for f in dataclasses.fields(TrainConfig)
                            if f.name in ADVANCED and f.default is not None)
# What each advanced field shows before the user types: the setting's default where 0 is a value (the seed's 0,
# the general replay share's 0.2), else 0 ("the preset decides").
INITIAL: dict[str, float] = {f.name: (f.default if f.name in ZERO_IS_A_VALUE else 0)
                             for f in dataclasses.fields(TrainConfig) if f.name in ADVANCED}
# Choices after the number fields: (label, value) pairs; "auto" lets the presets decide for the job and machine.
SWITCHES = {
    "precision": [("Automatic", "auto"), ("fp32: exact", "fp32"), ("bf16: faster on bf16 units", "bf16")],
    "compile": [("Automatic", "auto"), ("On", "on"), ("Off", "off")],
}


@dataclass(frozen=True, eq=False)  # identity hash: Gradio hashes State values, and ``columns`` is a dict
class DataChoice:
    """What the data step settled: the file or folder, the task and the role -> column choices."""

    path: str
    task: str
    columns: dict[str, str]
    validation_path: str | None = None


@dataclass
class JobValues:
    """The values of the widgets that describe a job, read from the page.

    Args:
        data: the data step's choice.
        model: a catalog key, a hub id or a local folder.
        strategy: a strategy key (``core.strategies``).
        preset: quick | balanced | thorough.
        name: a label for the run, or empty.
        validation: the validation-share slider; 0 means "choose from the data size".
        numbers: advanced field name -> value; 0 or None lets the preset decide (see ``ZERO_IS_A_VALUE``).
        switches: ``SWITCHES`` name -> choice; "auto" (or missing) leaves it to the preset.
    """

    data: DataChoice
    model: str
    strategy: str
    preset: str = "balanced"
    name: str | None = None
    validation: float | None = 0
    numbers: dict[str, Any] = field(default_factory=dict)
    switches: dict[str, str] = field(default_factory=dict)


def build_config(values: JobValues) -> JobConfig:
    """Turn the widget values into a job config, without validating it (``JobConfig.validate`` does that)."""
    train = TrainConfig(preset=values.preset or "balanced")
    for key, meta in ADVANCED.items():
        value = values.numbers.get(key)
        if value is None or (value == 0 and key not in ZERO_IS_A_VALUE):
            continue
        setattr(train, key, int(value) if meta.integer else float(value))
    precision = values.switches.get("precision")
    if precision in PRECISIONS:
        train.precision = precision
    if values.switches.get("compile") in ("on", "off"):
        train.compile = values.switches["compile"] == "on"
    data = values.data
    return JobConfig(
        task=data.task, model=str(values.model or "").strip(), strategy=values.strategy or "",
        data=DataConfig(path=data.path, columns=dict(data.columns), validation_path=data.validation_path,
                        validation_fraction=float(values.validation) if values.validation else None),
        train=train, name=(values.name or "").strip() or None,
    )


def command_for(config_file: str, home: str | None = None) -> str:
    """The shell command that reruns a job saved as ``config_file``."""
    parts = ["studio", "train", config_file]
    if home:
        parts += ["--home", home]
    return " ".join(shlex.quote(p) for p in parts)

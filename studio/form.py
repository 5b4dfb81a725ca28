"""The one place where the typed widgets become a ``JobConfig``.

Every number arrives from a ``gr.Number``/``gr.Slider`` (already a number; 0 means the preset decides), every
choice from a ``gr.Radio``/``gr.Dropdown``. Nothing is parsed from text.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from core.config import PRECISIONS, DataConfig, JobConfig, TrainConfig

# The advanced fields, in the order the settings tab lays them out and passes them in.
ADVANCED = ("epochs", "max_steps", "learning_rate", "batch_size", "grad_accum", "max_length",
            "lora_r", "lora_alpha", "eval_every", "seed", "max_minutes")
INT_FIELDS = {"max_steps", "batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha", "eval_every", "seed"}
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


def build_config(data: DataChoice, model: str, strategy: str, preset: str, name: str | None,
                 validation_fraction: float | None, *advanced) -> JobConfig:
    """Turn the widget values into a job config, without validating it (``JobConfig.validate`` does that).

    Args:
        data: the data step's choice.
        model: a catalog key, a hub id or a local folder.
        strategy: qlora | lora | head-only | full.
        preset: quick | balanced | thorough.
        name: a label for the run, or empty.
        validation_fraction: from the slider; 0 means "choose from the data size".
        advanced: the values of ``ADVANCED`` then of ``SWITCHES`` in that order; 0 or None lets the preset decide
            (a Gradio number field cannot be empty), except for the seed, where 0 is a seed; "auto" (or a missing
            value) leaves a switch to the preset.
    """
    values = dict(zip(ADVANCED, advanced))
    switches = dict(zip(SWITCHES, advanced[len(ADVANCED):]))
    train = TrainConfig(preset=preset)
    for key, value in values.items():
        if value is None or (value == 0 and key != "seed"):
            continue
        setattr(train, key, int(value) if key in INT_FIELDS else float(value))
    if switches.get("precision") in PRECISIONS:
        train.precision = switches["precision"]
    if switches.get("compile") in ("on", "off"):
        train.compile = switches["compile"] == "on"
    if train.seed is None:
        train.seed = 0
    fraction = float(validation_fraction) if validation_fraction else None
    return JobConfig(
        task=data.task, model=str(model or "").strip(), strategy=strategy,
        data=DataConfig(path=data.path, columns=dict(data.columns), validation_path=data.validation_path,
                        validation_fraction=fraction),
        train=train, name=(name or "").strip() or None,
    )


def command_for(config_file: str, home: str | None = None) -> str:
    """The shell command that reruns a job saved as ``config_file``."""
    parts = ["studio", "train", config_file]
    if home:
        parts += ["--home", home]
    return " ".join(shlex.quote(p) for p in parts)

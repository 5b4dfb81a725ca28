"""What every part of model resolution shares: the resolved model, its error, and reading a model folder."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..catalog import ModelEntry

Progress = Callable[[str], None] | None

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


class ModelUnavailable(RuntimeError):
    """The model cannot be used here; the message names it and says how to get it."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are.

    Args:
        name: what the user asked for.
        path: a transformers folder, or for EfficientNet the .pth file.
        source: local | studio-cache | hf-cache | packaged | hub.
        kind: transformers | efficientnet.
        entry: the catalog entry, None for models outside the catalog.
        model_type: the transformers ``model_type`` from config.json, or "efficientnet".
        trust_remote_code: the loaders may run code shipped with the model (the job's own setting; never in
            public mode).
    """

    name: str
    path: Path
    source: str
    kind: str
    entry: ModelEntry | None
    model_type: str
    trust_remote_code: bool = False



def has_weights(folder: Path) -> bool:
    """Whether ``folder`` holds a transformers model: a config.json and weights."""
    if not (folder / "config.json").is_file():
        return False
    return any((folder / f).is_file() for f in WEIGHT_FILES) or any(folder.glob("*.safetensors"))


def read_config(folder: Path) -> dict:
    """The model folder's config.json as a dict; ``ModelUnavailable`` saying so when it cannot be read."""
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"The config.json in {folder} cannot be read ({exc}): download the model again."
                               ) from None


def resolved_at(name: str, path: Path, source: str, entry: ModelEntry | None) -> ResolvedModel:
    """A ``ResolvedModel`` for weights found at ``path`` (a .pth file is EfficientNet, a folder transformers)."""
    if path.suffix == ".pth":
        return ResolvedModel(name, path, source, "efficientnet", entry, "efficientnet")
    return ResolvedModel(name, path, source, "transformers", entry, read_config(path).get("model_type", ""))

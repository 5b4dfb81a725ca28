"""What a classifier run's ``model/`` folder holds beside the weights, written by the training recipes and read
back by inference, ``studio eval``, export and batch prediction.

- ``classifier.json``: how to load and feed the model (task, strategy, base model, input settings, the tap).
- ``labels.json``: class names by label id.
- ``head.safetensors`` + ``head_config.json``: a head trained on frozen features: a ``LinearHead`` on one tap
  (head-only), or with ``"format": "feature-head"`` a ``FeatureHead`` on several taps and classical features
  (what the automatic search keeps when a head wins), with ``classical.json`` holding the fitted classical
  features (the TF-IDF vocabulary) when it reads them.
- ``base_centroids.safetensors``: each class's mean base embedding, so "what would the base model say" can be
  answered without the training data.

A regression run's folder has the same ``classifier.json`` (how to load and feed the model; its ``labels.json`` is
an empty list), a ``target.json`` (the target's name and the training targets' mean, spread and range), and instead
of centroids ``base_head.safetensors`` + ``base_head.json``: a ridge head on the base model's frozen features, the
least training that makes the base model answer with a number.

The weights themselves are in the ecosystem's formats (a peft adapter folder, ``save_pretrained`` safetensors);
see ``core.models.classifiers``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .models.heads import CENTROID_SCALE, FeatureHead, LinearHead, kernel_rows

INFO_FILE = "classifier.json"
LABELS_FILE = "labels.json"
HEAD_FILE = "head.safetensors"
HEAD_CONFIG = "head_config.json"
CENTROIDS_FILE = "base_centroids.safetensors"
CLASSICAL_FILE = "classical.json"
FEATURE_HEAD = "feature-head"
TARGET_FILE = "target.json"
BASE_HEAD_FILE = "base_head.safetensors"
BASE_HEAD_CONFIG = "base_head.json"


def write_info(folder: Path, info: dict, labels: list[str]) -> None:
    """``classifier.json`` (how to load and feed the model) and ``labels.json`` (class names by id)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    (folder / LABELS_FILE).write_text(json.dumps(list(labels), indent=1, ensure_ascii=False), encoding="utf-8")


def read_info(folder: Path) -> tuple[dict, list[str]]:
    """What ``write_info`` wrote; raises FileNotFoundError saying which run folder lacks a trained model."""
    info_path, labels_path = folder / INFO_FILE, folder / LABELS_FILE
    if not info_path.is_file() or not labels_path.is_file():
        raise FileNotFoundError(f"{folder} holds no trained classifier ({INFO_FILE} and {LABELS_FILE} are "
                                "missing): the run did not finish training; train it again or resume it.")
    return (json.loads(info_path.read_text(encoding="utf-8")),
            json.loads(labels_path.read_text(encoding="utf-8")))


def save_head(folder: Path, head: LinearHead, head_config: dict, names: tuple[str, str] = (HEAD_FILE, HEAD_CONFIG)
              ) -> None:
    """``head.safetensors`` and ``head_config.json`` (feature size, classes, the tap it reads).

    Args:
        folder: the model folder.
        head: the trained head.
        head_config: what rebuilds and feeds it.
        names: the weights' and the config's file names (a regression run's base head has its own).
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / names[0]))
    (folder / names[1]).write_text(json.dumps(head_config, indent=1), encoding="utf-8")


def save_feature_head(folder: Path, head: FeatureHead, head_config: dict, classical: dict | None = None) -> None:
    """A ``FeatureHead``: ``head.safetensors``, ``head_config.json`` (``format``, block widths, hidden width and
    its ``inputs``: which taps and classical features, in order) and ``classical.json`` when it reads them."""
    config = {**head_config, "format": FEATURE_HEAD, "block_dims": head.block_dims,
              **_body_shape(head)}
    save_head(folder, head, config)
    path = folder / CLASSICAL_FILE
    if classical is not None:
        path.write_text(json.dumps(classical), encoding="utf-8")
    elif path.exists():
        path.unlink()


def _hidden_width(head: FeatureHead) -> int:
    first = head.body[0] if isinstance(head.body, torch.nn.Sequential) else None
    return int(first.out_features) if isinstance(first, torch.nn.Linear) else 0


def _body_shape(head: FeatureHead) -> dict:
    """What rebuilds a feature head's body: its MLP's hidden width, and its kernel's centres when it has one."""
    rows = kernel_rows(head.body)
    return {"hidden": _hidden_width(head), **({"kernel_rows": rows} if rows else {})}


def load_head(folder: Path, names: tuple[str, str] = (HEAD_FILE, HEAD_CONFIG)) -> tuple[LinearHead | FeatureHead, dict]:
    """The trained head and its head_config.json from a run's model folder (a ``LinearHead`` for head-only runs,
    a ``FeatureHead`` for ``"format": "feature-head"``; its config then carries ``classical``, the fitted
    classical features' state, when it reads them). ``names``: the weights' and the config's file names."""
    from safetensors.torch import load_file

    config_path = folder / names[1]
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no {names[1]}: this run did not save a trained head.")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") == FEATURE_HEAD:
        head = FeatureHead(config["block_dims"], int(config["num_labels"]), int(config.get("hidden") or 0),
                           int(config.get("kernel_rows") or 0))
        classical_path = folder / CLASSICAL_FILE
        if classical_path.is_file():
            config["classical"] = json.loads(classical_path.read_text(encoding="utf-8"))
    else:
        head = LinearHead(int(config["feature_dim"]), int(config["num_labels"]))
    head.load_state_dict(load_file(str(folder / names[0])))
    return head.eval(), config


def save_feature_head_as(folder: Path, head: FeatureHead, head_config: dict, names: tuple[str, str]) -> None:
    """A ``FeatureHead`` reading taps only, under other file names (a regression run's base head)."""
    save_head(folder, head, {**head_config, "format": FEATURE_HEAD, "block_dims": head.block_dims,
                             **_body_shape(head)}, names)


def write_target(folder: Path, target: dict) -> None:
    """``target.json``: a regression run's target (its name, and the training targets' mean, spread and range)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TARGET_FILE).write_text(json.dumps(target, indent=1), encoding="utf-8")


def read_target(folder: Path) -> dict:
    """What ``write_target`` wrote; FileNotFoundError naming the folder when the run saved none."""
    path = folder / TARGET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no trained regressor ({TARGET_FILE} is missing): the run did not "
                                "finish training; train it again or resume it.")
    return json.loads(path.read_text(encoding="utf-8"))


def save_centroids(folder: Path, centroids: torch.Tensor, tap_name: str, tap_index: int) -> None:
    """``base_centroids.safetensors``: the class centroids and which tap of the base encoder they come from."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    meta = {"tap": tap_name, "tap_index": str(tap_index), "scale": str(CENTROID_SCALE)}
    save_file({"centroids": centroids.contiguous()}, str(folder / CENTROIDS_FILE), metadata=meta)


def read_centroids(folder: Path) -> tuple[torch.Tensor | None, dict]:
    """The centroids and their metadata; (None, {}) when the run saved none."""
    from safetensors import safe_open

    path = folder / CENTROIDS_FILE
    if not path.is_file():
        return None, {}
    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor("centroids"), dict(handle.metadata() or {})

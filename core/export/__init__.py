"""Getting a trained model out: a merged model folder, a zip of the run, or a push to the Hugging Face Hub (here);
GGUF files for llama.cpp/Ollama/LM Studio (``core.export.gguf``) with an Ollama Modelfile (``core.export.ollama``)."""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from ..config import JobConfig
from ..home import Home
from ..runs import RunDir
from ..saved import read_info
from ..stack import load as load_stack
from ..strategies import get_strategy
from ..tasks import get_task

# Checkpoints are for resuming and cached features are for re-training: neither belongs in a hand-over.
SKIP_IN_ZIP = ("checkpoints", "features.safetensors")


class ExportError(RuntimeError):
    """The export cannot be done; the message says why and what to do instead."""


def export_zip(run_dir: Path, out_dir: Path) -> Path:
    """Zip the run (config, metrics, log, eval, model card and weights; no checkpoints) and return the zip's path.

    Args:
        run_dir: the run folder.
        out_dir: where the zip is written.
    """
    run = RunDir(Path(run_dir))
    if not run.config.is_file():
        raise ExportError(f"{run_dir} is not a run folder (it has no config.yaml).")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{run.name}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(run.path.rglob("*")):
            rel = path.relative_to(run.path)
            if path.is_dir() or path.is_symlink() or rel.parts[0] in SKIP_IN_ZIP or path.name in SKIP_IN_ZIP:
                continue
            zf.write(path, Path(run.name) / rel)
    os.replace(tmp, target)
    return target


def export_merged(run_dir: Path, out_dir: Path, home: Home,
                  progress: Callable[[str], None] | None = None) -> Path:
    """Write a standalone model folder: LoRA adapters merged into the base weights, saved as safetensors.

    Args:
        run_dir: a completed or stopped run with weights in its model folder.
        out_dir: the folder to create (must not exist or be empty).
        home: the studio home, to find the base model.
        progress: called with a sentence per slow step.
    """
    run = RunDir(Path(run_dir))
    config = JobConfig.load(run.config)
    say = progress or (lambda message: None)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty: choose a new folder for the merged model.")
    # Written beside the target and renamed at the end: an export cut short (a crash, a full disk, a kill)
    # leaves no half model under the name the user asked for, and trying again just works.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        _write_merged(run, config, home, partial, say)
        if run.card.is_file():
            shutil.copy2(run.card, partial / "README.md")
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); os.replace cannot put a folder over one
        os.replace(partial, out_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def _write_merged(run: RunDir, config: JobConfig, home: Home, out_dir: Path, say: Callable[[str], None]) -> None:
    if (run.model / "adapter_config.json").is_file():
        say("Loading the base model and the adapter.")
        merged, extras = _load_and_merge(run, config, home)
        say("Merging the adapter into the base weights and saving.")
        merged.save_pretrained(out_dir, safe_serialization=True)
        for saver in extras:
            saver.save_pretrained(out_dir)
    elif (run.model / "config.json").is_file() or (run.model / "model.safetensors").is_file():
        say("The run trained every weight: copying its model folder.")
        shutil.copytree(run.model, out_dir, dirs_exist_ok=True)
    elif (run.model / "head.safetensors").is_file():
        raise ExportError("This run trained a head on a frozen model: there is nothing to merge. Download the "
                          "head (model folder or the run zip); it loads with the studio's Classifier (a regression "
                          "run's with its Regressor).")
    else:
        raise ExportError("This run has no saved weights yet (it failed or was stopped before saving).")


def _load_and_merge(run: RunDir, config: JobConfig, home: Home):
    _require_mergeable(config)
    load_stack()
    from peft import PeftModel

    from ..models import load_causal_lm, load_text_classifier, load_image_classifier, load_tokenizer, resolve_model

    resolved = resolve_model(config.model, home, task=config.task)
    extras = []
    if get_task(config.task).kind == "regression":
        from ..models.regressors import build_regressor
        base = build_regressor(resolved, config.task)
        if get_task(config.task).modality == "text":
            extras.append(load_tokenizer(resolved))
    elif get_task(config.task).kind == "generation":  # chat, preference pairs, documents: a causal LM
        base = load_causal_lm(resolved)
        extras.append(load_tokenizer(resolved))
    else:
        _, names = read_info(run.model)
        id2label = dict(enumerate(names))
        loader = load_text_classifier if config.task == "text-classification" else load_image_classifier
        base = loader(resolved, len(names), id2label)
        if config.task == "text-classification":
            extras.append(load_tokenizer(resolved))
    model = PeftModel.from_pretrained(base, run.model)
    return model.merge_and_unload(), extras


def _require_mergeable(config: JobConfig) -> None:
    """Refuse, in words, an adapter whose training peft cannot fold into the weights (prefix tuning)."""
    strategy = get_strategy(config.strategy)
    if not strategy.mergeable:
        raise ExportError(f"{strategy.title} cannot be merged into the model: it learned virtual tokens that are "
                          "fed to every layer, not changes to the weights, so there is nothing to fold in (and no "
                          "GGUF file to write). Use the adapter as it is (the run's model folder, loaded with "
                          "peft's PeftModel.from_pretrained on its base, or the run zip), or train with LoRA for a "
                          "standalone merged model.")


def push_to_hub(run_dir: Path, repo_id: str, token: str, private: bool = True) -> str:
    """Upload the run's model folder to the Hub; returns the repo URL. Offline: a clear ExportError."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ExportError("The studio runs offline (HF_HUB_OFFLINE=1): pushing to the Hub needs internet. "
                          "Download the run zip instead, or restart the studio online.")
    if not token or not repo_id:
        raise ExportError("Give a Hub repository name (user/model) and a write token to push.")
    from huggingface_hub import HfApi

    run = RunDir(Path(run_dir))
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(run.model), repo_id=repo_id, commit_message=f"Upload {run.name}")
    except Exception as exc:  # network and permission errors come in many types
        raise ExportError(f"Pushing to {repo_id} failed: {exc}. Check the token's write permission and "
                          "the connection.") from None
    return f"https://huggingface.co/{repo_id}"

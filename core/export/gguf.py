"""A tuned chat model as GGUF files for llama.cpp, Ollama and LM Studio.

The merged model (adapter folded into the base, or the full fine-tune) is written with the ``gguf`` package's
writer: the architecture's hyper-parameters, the byte-level BPE tokenizer with its merges, special tokens and chat
template as metadata, and every weight under the name the ``gguf`` tensor-name map gives it. One file per type:
``f16`` (exact up to half precision), ``q8_0`` (half the size, nearly lossless) and ``q4_0``/``q4_1``/``q5_0``/
``q5_1`` (the block quantisations the ``gguf`` package can compute in Python; k-quants such as Q4_K_M need
llama.cpp's own ``llama-quantize``). Beside them: an Ollama ``Modelfile`` (``core.export.ollama``) and a README.

Supported: the catalog's chat architectures, ``llama`` (SmolLM2, Llama 3.x) and ``qwen2`` (Qwen2.5). Anything
else gets an ``ExportError`` that says so and what to do instead.

Tensors are converted and written one at a time, so the export needs the merged fp32 model plus one tensor of
memory, and ``stop`` is honoured between tensors.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from . import ExportError

Progress = Callable[[str, float | None], None]

# type name -> (tensor type for 2-D weights, llama.cpp file type): what each file holds.
QUANTS = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0", "q5_1": "Q5_1", "q5_0": "Q5_0", "q4_1": "Q4_1",
          "q4_0": "Q4_0"}
FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0", "q5_1": "MOSTLY_Q5_1",
              "q5_0": "MOSTLY_Q5_0", "q4_1": "MOSTLY_Q4_1", "q4_0": "MOSTLY_Q4_0"}
DEFAULT_TYPES = ("f16", "q8_0")
# The file the Modelfile points at: q8_0 answers like f16 at half the size; the others are listed in the card.
OLLAMA_PREFERENCE = ("q8_0", "f16", "q5_1", "q5_0", "q4_1", "q4_0", "f32")
SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
# Pre-tokenizer split patterns of the byte-level BPE families the catalog's chat models use, by llama.cpp's name
# for them (tokenizer.ggml.pre): llama.cpp picks its own pre-tokenizer from this name.
SPLIT_PATTERNS = {
    "qwen2": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
              r"|\s+(?!\S)|\s+"),
    "llama-bpe": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+"),
}


@dataclass
class GGUFExport:
    """What ``export_gguf`` wrote.

    Attributes:
        folder: the output folder.
        files: type name (``f16``, ``q8_0``...) -> GGUF file.
        modelfile: the Ollama Modelfile (points at ``ollama_file``).
        ollama_file: the GGUF the Modelfile uses.
        ollama_name: the model name suggested for ``ollama create``.
        notes: sentences worth showing (tensors kept at higher precision, a default system prompt...).
        check: the result of loading the f16 (or f32) file back with transformers, or None when not checked.
    """

    folder: Path
    files: dict[str, Path]
    modelfile: Path
    ollama_file: Path
    ollama_name: str
    notes: list[str] = field(default_factory=list)
    check: dict | None = None

    @property
    def ollama_command(self) -> str:
        """The one line that imports the export into Ollama (run inside ``folder``)."""
        return f"ollama create {self.ollama_name} -f Modelfile"


class ExportStopped(ExportError):
    """The export was stopped on request; nothing was left behind."""


def export_gguf(run_dir: Path, out_dir: Path, home, types: Sequence[str] = DEFAULT_TYPES,
                progress: Progress | None = None, stop: threading.Event | None = None,
                check: bool = False) -> GGUFExport:
    """Write a chat run's merged model as GGUF files, an Ollama Modelfile and a README into ``out_dir``.

    The folder appears complete or not at all: everything is written beside it and renamed at the end.

    Args:
        run_dir: a chat run with saved weights (LoRA/QLoRA adapter or full fine-tune).
        out_dir: the folder to create (must not exist or be empty); never inside the run's model folder.
        home: the studio home (``core.home.Home``), to find the base model.
        types: which files to write, from ``QUANTS`` (default f16 and q8_0; the 4/5-bit types lose visibly more
            on small models: on SmolLM2-135M, q4_0 changed both test answers, q8_0 one word late in one).
        progress: called with (sentence, fraction of the whole export done or None) as it goes.
        stop: set it to stop between tensors; the partial files are removed and ``ExportStopped`` raised.
        check: also load the f16 (or f32) file back with transformers' GGUF reader and compare its greedy answers
            with the merged model's (the result is in ``GGUFExport.check`` and the README). It costs a minute or
            two for SmolLM2 on two CPU cores, so it is off by default; every file is always read back with the
            gguf reader (tensors, vocabulary, chat template) before the export counts as done.

    Raises:
        ExportError: not a chat run, no weights, an unsupported architecture or tokenizer, a bad type name.
    """
    from ..config import JobConfig
    from ..runs import RunDir
    from ..tasks import get_task

    say = progress or (lambda message, fraction=None: None)
    types = _check_types(types)
    run = RunDir(Path(run_dir))
    if not run.config.is_file():
        raise ExportError(f"{run_dir} is not a run folder (it has no config.yaml).")
    config = JobConfig.load(run.config)
    if get_task(config.task).kind != "generation":
        raise ExportError(f"GGUF is a format for chat models (llama.cpp, Ollama, LM Studio); {run.name} is a "
                          f"{config.task} run. Export it as a merged model folder or a zip instead.")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty: choose a new folder for the GGUF files.")
    say("Loading the base model and merging the trained weights.", 0.0)
    model, tokenizer = load_merged_chat(run, config, home)
    check_supported(model.config, tokenizer)
    name = _model_name(config, run)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        result = _write_all(model, tokenizer, config, run, name, types, partial, say, stop, check)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.replace(partial, out_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return _moved(result, partial, out_dir)


def _write_all(model, tokenizer, config, run, name: str, types: list[str], folder: Path, say: Progress,
               stop: threading.Event | None, check: bool) -> GGUFExport:
    from . import ollama

    files: dict[str, Path] = {}
    notes: list[str] = []
    for i, kind in enumerate(types):
        def step(message: str, fraction: float | None, i=i) -> None:
            say(message, (i + (fraction or 0.0)) / len(types) * (0.9 if check else 1.0))

        path = folder / f"{ollama_name(name)}-{kind}.gguf"
        written = write_gguf(model, tokenizer, path, kind, name=name, base_model=config.model, progress=step,
                             stop=stop)
        notes += [n for n in written if n not in notes]
        read_back(path, model.config, tokenizer)
        files[kind] = path
    chosen = next(k for k in OLLAMA_PREFERENCE if k in files)
    parts = ollama.template_parts(tokenizer)
    modelfile = folder / "Modelfile"
    modelfile.write_text(ollama.modelfile(files[chosen].name, parts, ollama.stop_tokens(parts, tokenizer)),
                         encoding="utf-8")
    if parts.default_system:
        notes.append("The chat template adds a default system prompt when a conversation has none; the Modelfile "
                     "sets it as SYSTEM so Ollama does the same.")
    result = GGUFExport(folder, files, modelfile, files[chosen], ollama_name(name), notes)
    exact = next((files[k] for k in ("f32", "f16") if k in files), None)
    if check and exact is not None:
        say(f"Checking {exact.name}: loading it back with transformers and comparing answers.", 0.9)
        result.check = check_gguf(exact, model, tokenizer, prompts=_check_prompts(run))
    (folder / "README.md").write_text(ollama.readme(result, run, config), encoding="utf-8")
    say(f"GGUF export ready: {', '.join(p.name for p in files.values())}.", 1.0)
    return result


def _moved(result: GGUFExport, old: Path, new: Path) -> GGUFExport:
    def move(path: Path) -> Path:
        return new / path.relative_to(old)
    result.folder = new
    result.files = {k: move(v) for k, v in result.files.items()}
    result.modelfile, result.ollama_file = move(result.modelfile), move(result.ollama_file)
    if result.check:
        result.check["file"] = str(move(Path(result.check["file"])))
    return result


def _check_types(types: Sequence[str]) -> list[str]:
    wanted = [str(t).strip().lower() for t in types if str(t).strip()]
    unknown = [t for t in wanted if t not in QUANTS]
    if unknown or not wanted:
        raise ExportError(f"Unknown GGUF type(s) {', '.join(unknown) or '(none given)'}: choose from "
                          f"{', '.join(QUANTS)} (k-quants such as Q4_K_M need llama.cpp's llama-quantize on the f16 "
                          "file).")
    return list(dict.fromkeys(wanted))


# --- the model ------------------------------------------------------------------------------------------
def load_merged_chat(run, config, home):
    """(merged fp32 causal LM in eval mode, the run's tokenizer) of a chat run.

    Args:
        run: the ``RunDir``.
        config: its ``JobConfig``.
        home: the studio home, to find the base model.
    """
    from ..models import load_tokenizer, resolve_model
    from ..stack import load as load_stack

    load_stack()
    weights = run.model
    if (weights / "adapter_config.json").is_file():
        from . import _load_and_merge
        model, _ = _load_and_merge(run, config, home)
    elif (weights / "config.json").is_file():
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32)
    else:
        raise ExportError("This run has no saved weights yet (it failed or was stopped before saving).")
    if (weights / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(weights)  # carries the chat template used in training
    else:
        tokenizer = load_tokenizer(resolve_model(config.model, home, task="chat"))
    return model.float().eval(), tokenizer


def check_supported(model_config, tokenizer) -> None:
    """Raise ``ExportError`` saying why when this model or tokenizer cannot be written as GGUF here.

    Args:
        model_config: the transformers config of the merged model.
        tokenizer: its tokenizer.
    """
    arch = getattr(model_config, "model_type", None)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ExportError(f"GGUF export supports the {' and '.join(SUPPORTED_ARCHITECTURES)} architectures (the "
                          f"catalog's chat models); this model is '{arch}'. Export the merged model folder and "
                          "convert it with llama.cpp's convert_hf_to_gguf.py, which knows many more.")
    _rope_scaling(model_config)  # raises for a scaling llama.cpp would need more keys for
    pre_tokenizer(tokenizer)
    if not getattr(tokenizer, "chat_template", None):
        raise ExportError("The tokenizer has no chat template, so Ollama and llama.cpp would not know how to "
                          "lay out a conversation.")


def pre_tokenizer(tokenizer) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer (``tokenizer.ggml.pre``), read from tokenizer.json.

    Raises:
        ExportError: not a byte-level BPE tokenizer, or a split pattern llama.cpp would not reproduce.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str()) if hasattr(tokenizer, "backend_tokenizer") else {}
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or (spec.get("decoder") or {}).get("type") != \
            "ByteLevel":
        raise ExportError("GGUF export here writes byte-level BPE tokenizers (SmolLM2, Qwen2.5, Llama 3); this "
                          "model's tokenizer is another kind. Use llama.cpp's convert_hf_to_gguf.py on the merged "
                          "model folder.")
    steps = _pre_steps(spec.get("pre_tokenizer"))
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        for name, known in SPLIT_PATTERNS.items():
            if pattern == known:
                return name
    raise ExportError(f"The tokenizer splits text in a way ({' + '.join(map(str, kinds)) or 'none'}) this export "
                      "does not know llama.cpp's name for, so llama.cpp could tokenize differently from training. "
                      "Use llama.cpp's convert_hf_to_gguf.py on the merged model folder.")


def _pre_steps(pre: dict | None) -> list[dict]:
    if not pre:
        return []
    return list(pre.get("pretokenizers") or []) if pre.get("type") == "Sequence" else [pre]


# --- writing one file -----------------------------------------------------------------------------------
def write_gguf(model, tokenizer, path: Path, kind: str = "f16", *, name: str = "model", base_model: str = "",
               progress: Progress | None = None, stop: threading.Event | None = None) -> list[str]:
    """Write one GGUF file of ``model`` (a llama or qwen2 causal LM) with its tokenizer; returns notes.

    Args:
        model: the merged transformers model (fp32).
        tokenizer: its tokenizer (byte-level BPE with a chat template).
        path: the file to write.
        kind: a key of ``QUANTS``.
        name: the model's name in the metadata.
        base_model: the base model's catalog key or hub id, recorded as the base in the metadata.
        progress: called with (sentence, fraction of this file done).
        stop: checked between tensors; ``ExportStopped`` when set (the caller removes the file).
    """
    import gguf

    say = progress or (lambda message, fraction=None: None)
    check_supported(model.config, tokenizer)
    arch = model.config.model_type
    writer = gguf.GGUFWriter(str(path), arch)
    try:
        _metadata(writer, model.config, name, base_model, kind)
        _vocabulary(writer, tokenizer, model.config.vocab_size)
        plan, notes = _plan(model, kind)
        for tensor_name, _, shape, dtype, nbytes, raw in plan:
            writer.add_tensor_info(tensor_name, shape, dtype, nbytes, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for i, (tensor_name, source, _, dtype, _, raw) in enumerate(plan):
            if stop is not None and stop.is_set():
                raise ExportStopped("The GGUF export was stopped; no file was kept.")
            writer.write_tensor_data(_convert(source(), dtype, raw))
            if i % 8 == 0 or i == len(plan) - 1:
                say(f"Writing {path.name}: tensor {i + 1} of {len(plan)}.", (i + 1) / len(plan))
    finally:
        writer.close()
    return notes


def _metadata(writer, config, name: str, base_model: str, kind: str) -> None:
    import gguf

    from ..catalog import get_entry

    entry = get_entry(base_model) if base_model else None
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_tags(["finetune-studio"])
    if entry is not None and entry.hub_id:
        writer.add_base_model_count(1)
        writer.add_base_model_name(0, entry.title)
        writer.add_base_model_repo_url(0, f"https://huggingface.co/{entry.hub_id}")
    if entry is not None and entry.licence:
        writer.add_license(entry.licence)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_freq_base(float(_rope_parameters(config).get("rope_theta", 10000.0)))
    writer.add_vocab_size(config.vocab_size)
    if config.model_type == "llama":
        writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    scaling = _rope_scaling(config)
    if scaling and scaling["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
    writer.add_file_type(int(getattr(gguf.LlamaFileType, FILE_TYPES[kind])))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _rope_parameters(config) -> dict:
    """transformers 5 keeps rope settings in ``rope_parameters``; older configs in rope_theta/rope_scaling."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    if "rope_theta" not in params and getattr(config, "rope_theta", None) is not None:
        params["rope_theta"] = config.rope_theta
    scaling = getattr(config, "rope_scaling", None)
    if isinstance(scaling, dict) and "rope_type" not in params:
        params.update({k: v for k, v in scaling.items() if k != "type"})
        params["rope_type"] = scaling.get("rope_type") or scaling.get("type")
    return params


def _rope_scaling(config) -> dict | None:
    params = _rope_parameters(config)
    kind = params.get("rope_type") or "default"
    if kind == "default":
        return None
    if kind == "llama3" and config.model_type == "llama" or kind == "linear":
        return params
    raise ExportError(f"The model uses '{kind}' rotary scaling, which this GGUF export does not write. Export "
                      "the merged model folder and convert it with llama.cpp's convert_hf_to_gguf.py.")


def _vocabulary(writer, tokenizer, vocab_size: int) -> None:
    """Tokens (padded to the embedding size), their types, merges, special ids and the chat template."""
    import gguf

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer(tokenizer))
    tokens, types = _token_table(tokenizer, vocab_size)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    special.chat_template = tokenizer.chat_template  # exactly the template training rendered with
    # Whether llama.cpp prepends BOS/appends EOS is decided here, from what the tokenizer really does.
    probe = tokenizer("a")["input_ids"]
    special.add_special_token["bos"] = bool(tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id])
    special.add_special_token["eos"] = bool(tokenizer.eos_token_id is not None and probe[-1:] == [tokenizer.eos_token_id])
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_space_prefix(False)


def _token_table(tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    import gguf

    vocab = tokenizer.get_vocab()
    if len(vocab) > vocab_size:
        raise ExportError(f"The tokenizer has {len(vocab)} tokens but the model only {vocab_size} embeddings: the "
                          "two do not belong together.")
    by_id = {i: t for t, i in vocab.items()}
    added = {i: t for i, t in tokenizer.added_tokens_decoder.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
        elif i in added:
            tokens.append(by_id[i])
            types.append(int(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED))
        else:
            tokens.append(by_id[i])
            types.append(int(gguf.TokenType.NORMAL))
    return tokens, types


# --- tensors --------------------------------------------------------------------------------------------
def _plan(model, kind: str) -> tuple[list[tuple], list[str]]:
    """(gguf name, source thunk, shape, numpy dtype, bytes, ggml type or None) per tensor, in writing order."""
    import gguf
    from gguf.quants import quant_shape_to_byte_shape

    wanted = gguf.GGMLQuantizationType[QUANTS[kind]]
    plan, kept = [], []
    for gguf_name, source, shape in _tensors(model):
        qtype = _tensor_type(gguf_name, shape, wanted)
        if len(shape) == 2 and qtype != wanted:
            kept.append(gguf_name)
        if qtype == gguf.GGMLQuantizationType.F32:
            plan.append((gguf_name, source, shape, np.float32, 4 * math.prod(shape), None))
        elif qtype == gguf.GGMLQuantizationType.F16:
            plan.append((gguf_name, source, shape, np.float16, 2 * math.prod(shape), None))
        else:
            byte_shape = quant_shape_to_byte_shape(shape, qtype)
            plan.append((gguf_name, source, byte_shape, np.uint8, math.prod(byte_shape), qtype))
    notes = []
    if kept:
        notes.append(f"{kind}: {len(kept)} matrices kept at higher precision ({', '.join(sorted(set(_short(n) for n in kept)))})"
                     " - the embeddings, as llama.cpp does, or rows that do not split into quantisation blocks.")
    return plan, notes


def _short(name: str) -> str:
    parts = name.split(".")
    return parts[2] if parts[0] == "blk" and len(parts) > 2 else parts[0]


def _tensor_type(gguf_name: str, shape: tuple[int, ...], wanted):
    """Norms and biases stay f32 (as llama.cpp writes them); the embedding and output matrices stay at least
    q8_0 in 4/5-bit files (they matter most and are shared when the embeddings are tied); rows that do not
    split into the type's blocks fall back to f16."""
    import gguf
    from gguf.constants import GGML_QUANT_SIZES

    T = gguf.GGMLQuantizationType
    if len(shape) < 2 or wanted == T.F32:
        return T.F32
    if wanted == T.F16:
        return T.F16
    if gguf_name.startswith(("token_embd", "output.")) and wanted in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        wanted = T.Q8_0
    block, _ = GGML_QUANT_SIZES[wanted]
    return wanted if shape[-1] % block == 0 else T.F16


def _tensors(model) -> Iterator[tuple[str, Callable[[], np.ndarray], tuple[int, ...]]]:
    """(gguf name, a thunk giving the fp32 numpy array, shape) for every weight, tied output skipped."""
    import gguf

    config = model.config
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == config.model_type)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    tied = bool(getattr(config, "tie_word_embeddings", False))
    state = model.state_dict()
    for hf_name, tensor in state.items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reads the output matrix from token_embd when the file has no output.weight
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ExportError(f"The weight '{hf_name}' has no GGUF name for {config.model_type}: this model has "
                              "parts the export does not know. Use llama.cpp's convert_hf_to_gguf.py.")
        rows = None
        if config.model_type == "llama" and gguf_name.endswith(("attn_q.weight", "attn_q.bias")):
            rows = heads
        elif config.model_type == "llama" and gguf_name.endswith(("attn_k.weight", "attn_k.bias")):
            rows = kv_heads
        yield gguf_name, _thunk(tensor, rows), tuple(tensor.shape)
    factors = _llama3_rope_factors(config)
    if factors is not None:
        yield "rope_freqs.weight", (lambda: factors), tuple(factors.shape)


def _thunk(tensor, heads: int | None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        array = tensor.detach().float().cpu().numpy()
        return _interleave_rotary(array, heads) if heads else array
    return load


def _interleave_rotary(weights: np.ndarray, heads: int) -> np.ndarray:
    """Reorder query/key rows from transformers' rotary layout (each head's first half, then its second half)
    to llama.cpp's (the two halves interleaved pairwise), which its llama graph expects."""
    shape = weights.shape
    return weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _llama3_rope_factors(config) -> np.ndarray | None:
    """Llama 3.1+'s frequency-dependent rotary scaling, as the per-frequency divisors llama.cpp reads from a
    ``rope_freqs`` tensor: 1 for high frequencies, the factor for low ones, a smooth blend between."""
    params = _rope_scaling(config)
    if not params or params.get("rope_type") != "llama3":
        return None
    heads = config.num_attention_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    base = float(_rope_parameters(config).get("rope_theta", 10000.0))
    factor, low, high = float(params["factor"]), float(params["low_freq_factor"]), float(params["high_freq_factor"])
    original = float(params["original_max_position_embeddings"])
    freqs = 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    wavelength = 2 * math.pi / freqs
    smooth = np.clip((original / wavelength - low) / (high - low), 0.0, 1.0)
    divisors = 1.0 / (smooth + (1.0 - smooth) / factor)
    divisors[wavelength < original / high] = 1.0
    divisors[wavelength > original / low] = factor
    return divisors.astype(np.float32)


def _convert(array: np.ndarray, dtype, raw) -> np.ndarray:
    """The array as it is stored: f32/f16 as is, block types quantised by the gguf package."""
    import gguf

    if raw is None:
        return np.ascontiguousarray(array, dtype=dtype)
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), raw)


# --- checking a file ------------------------------------------------------------------------------------
def read_back(path: Path, model_config, tokenizer) -> dict:
    """Read a written file with the gguf package's reader and check what llama.cpp and Ollama will look for.

    Returns the file's architecture, tensor count, vocabulary size and template length.

    Raises:
        ExportError: the file does not read back as written.
    """
    import gguf

    reader = gguf.GGUFReader(str(path))
    fields = reader.fields
    arch = fields["general.architecture"].contents()
    tokens = len(fields["tokenizer.ggml.tokens"].data)
    template = fields["tokenizer.chat_template"].contents() if "tokenizer.chat_template" in fields else ""
    problems = []
    if arch != model_config.model_type:
        problems.append(f"architecture {arch}")
    if tokens != model_config.vocab_size:
        problems.append(f"{tokens} tokens for {model_config.vocab_size} embeddings")
    if template != tokenizer.chat_template:
        problems.append("the chat template")
    if not any(t.name == "token_embd.weight" for t in reader.tensors):
        problems.append("no token embeddings")
    if problems:
        raise ExportError(f"{path.name} did not read back as written ({'; '.join(problems)}); it was not kept.")
    return {"architecture": arch, "tensors": len(reader.tensors), "tokens": tokens, "template_chars": len(template)}


DEFAULT_CHECK_PROMPTS = ("What is the capital of France?", "Write one sentence about the sea.")


def check_gguf(path: Path, reference, tokenizer, prompts: Sequence[str] = DEFAULT_CHECK_PROMPTS,
               max_new_tokens: int = 16) -> dict:
    """Load a GGUF file back with transformers' GGUF reader and compare it with the model it was written from.

    Args:
        path: the GGUF file.
        reference: the merged transformers model it was written from.
        tokenizer: the tokenizer it was written with.
        prompts: user messages; each is rendered with the chat template and answered greedily by both models.
        max_new_tokens: the answers' length.

    Returns a dict: ``file``, ``prompts``, ``same_answers`` (how many greedy answers match token for token),
    ``same_tokenization`` (the file's tokenizer encodes the rendered prompts to the same ids), ``same_template``,
    ``max_logit_difference`` (largest gap between the two models' first-answer-token logits), ``answers``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.templates import render

    path = Path(path)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    same, same_ids, worst, answers = 0, True, 0.0, []
    for prompt in prompts:
        text = render(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        same_ids &= loaded_tokenizer(text, add_special_tokens=False)["input_ids"] == ids[0].tolist()
        with torch.no_grad():
            worst = max(worst, float((reference(ids).logits[0, -1] - loaded(ids).logits[0, -1]).abs().max()))
            want = _greedy(reference, ids, max_new_tokens, tokenizer)
            got = _greedy(loaded, ids, max_new_tokens, tokenizer)
        same += want == got
        answers.append({"prompt": prompt, "merged": tokenizer.decode(want, skip_special_tokens=True),
                        "gguf": tokenizer.decode(got, skip_special_tokens=True)})
    del loaded
    return {"file": str(path), "prompts": len(prompts), "same_answers": same, "same_tokenization": bool(same_ids),
            "same_template": loaded_tokenizer.chat_template == tokenizer.chat_template,
            "max_logit_difference": round(worst, 6), "answers": answers}


def _greedy(model, ids, max_new_tokens: int, tokenizer) -> list[int]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=max_new_tokens,
                         do_sample=False, use_cache=True, pad_token_id=pad)
    return out[0, ids.shape[1]:].tolist()


def _check_prompts(run) -> list[str]:
    """The run's own validation prompts when its evaluation kept some, else two general ones."""
    try:
        report = json.loads(run.eval.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    prompts = [e["prompt"] for e in report.get("examples", []) if isinstance(e, dict) and e.get("prompt")]
    return prompts[:2] or list(DEFAULT_CHECK_PROMPTS)


def _model_name(config, run) -> str:
    return config.name or run.name


def ollama_name(name: str) -> str:
    """The model name suggested for ``ollama create``: the run's name in the characters Ollama accepts."""
    return _slug(name).lower()


def _slug(name: str) -> str:
    """A file and Ollama model name: letters, digits, dots, dashes and underscores only."""
    import re
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:60] or "model"

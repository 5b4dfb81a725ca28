"""Model resolution (local folder, studio cache, HF cache, packaged, hub) and loading, with tiny models."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from core.models import hub, packaged
from core.catalog import get_entry
from core.home import Home
from core.models import (ModelUnavailable, ResolvedModel, convert_smollm2, load_causal_lm, load_image_classifier,
                         load_text_classifier, load_tokenizer, model_status, parameter_count, resolve_model)

torch.set_num_threads(1)


def _save_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models as tok_models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(61)]
    tok = Tokenizer(tok_models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)


def _tiny_llama(folder: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    _save_tokenizer(folder)
    return folder


def _tiny_bert(folder: Path) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


def _tiny_vit(folder: Path) -> Path:
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2)
    ViTModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"llama": _tiny_llama(root / "llama"), "bert": _tiny_bert(root / "bert"), "vit": _tiny_vit(root / "vit")}


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return Home.resolve(tmp_path / "home")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _fake_hf_cache(home_tmp: Path, hub_id: str, src: Path, with_weights: bool = True) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = home_tmp / "hf-cache" / ("models--" + hub_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in src.iterdir():
        if with_weights or not file.name.endswith(".safetensors"):
            (snapshot / file.name).write_bytes(file.read_bytes())
    return snapshot


# --- resolution order -----------------------------------------------------------------------------
def test_local_folder(home, tiny):
    resolved = resolve_model(str(tiny["llama"]), home)
    assert resolved.source == "local" and resolved.kind == "transformers"
    assert resolved.model_type == "llama" and resolved.entry is None
    assert resolved.path == tiny["llama"].resolve()


def test_local_folder_problems_are_explained(home, tmp_path, tiny):
    with pytest.raises(ModelUnavailable, match="no folder at"):
        resolve_model(str(tmp_path / "missing" / "model"), home)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match="no config.json"):
        resolve_model(str(empty), home)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match="LoRA adapter"):
        resolve_model(str(adapter), home)
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny["llama"] / "config.json").read_text())
    with pytest.raises(ModelUnavailable, match="no weights"):
        resolve_model(str(no_weights), home)


def test_catalog_key_is_not_shadowed_by_a_folder_in_the_cwd(home, tmp_path, tiny, monkeypatch):
    _copy(tiny["bert"], tmp_path / "minilm-l6")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("minilm-l6", home).source == "packaged"
    assert resolve_model("./minilm-l6", home).source == "local"


def test_studio_cache_by_catalog_key(home, tiny):
    _copy(tiny["llama"], home.models / "smollm2-135m-instruct")
    resolved = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", home)
    assert resolved.source == "studio-cache"
    assert resolved.entry.key == "smollm2-135m-instruct"
    assert model_status(resolved.entry, home) == "ready"


def test_hf_cache(home, tmp_path, tiny):
    snapshot = _fake_hf_cache(tmp_path, "org/tiny-llama", tiny["llama"])
    resolved = resolve_model("org/tiny-llama", home)
    assert resolved.source == "hf-cache" and resolved.path == snapshot


def test_studio_cache_comes_before_hf_cache(home, tmp_path, tiny):
    _fake_hf_cache(tmp_path, "org/tiny-llama", tiny["llama"])
    _copy(tiny["llama"], home.models / "org--tiny-llama")
    assert resolve_model("org/tiny-llama", home).source == "studio-cache"


def test_hf_cache_without_weights_is_not_a_model(home, tmp_path, tiny):
    _fake_hf_cache(tmp_path, "org/partial", tiny["llama"], with_weights=False)
    with pytest.raises(ModelUnavailable, match="org/partial"):
        resolve_model("org/partial", home)


def test_packaged_defaults_resolve_offline(home):
    minilm = resolve_model("minilm-l6", home)
    assert (minilm.source, minilm.kind, minilm.model_type) == ("packaged", "transformers", "bert")
    effnet = resolve_model("efficientnet-lite0", home, task="image-classification")
    assert (effnet.source, effnet.kind, effnet.model_type) == ("packaged", "efficientnet", "efficientnet")
    assert effnet.path.suffix == ".pth"
    assert parameter_count(effnet) == 4_652_008
    assert abs(parameter_count(minilm) / 1e6 - get_entry("minilm-l6").params_m) < 0.1


def test_model_status(home):
    assert model_status(get_entry("minilm-l6"), home) == "ready"
    assert model_status(get_entry("efficientnet-lite0"), home) == "ready"
    assert model_status(get_entry("smollm2-135m-instruct"), home) == "packaged"
    assert model_status(get_entry("qwen2.5-0.5b-instruct"), home) == "download"


# --- offline and wrong-task messages --------------------------------------------------------------
def test_offline_unknown_hub_id(home):
    with pytest.raises(ModelUnavailable) as caught:
        resolve_model("someone/not-downloaded", home)
    message = str(caught.value)
    assert "someone/not-downloaded" in message and "offline" in message
    assert "huggingface-cli download someone/not-downloaded" in message


def test_offline_gated_catalog_model_says_gated(home):
    with pytest.raises(ModelUnavailable, match="gated"):
        resolve_model("llama-3.2-1b-instruct", home)


def test_nonsense_name(home):
    with pytest.raises(ModelUnavailable, match="not a catalog model"):
        resolve_model("what is this", home)
    with pytest.raises(ModelUnavailable, match="No model given"):
        resolve_model("  ", home)


def test_wrong_task_for_catalog_model(home):
    with pytest.raises(ModelUnavailable) as caught:
        resolve_model("smollm2-135m-instruct", home, task="image-classification")
    message = str(caught.value)
    assert "chat model" in message and "image-classification" in message and "efficientnet-lite0" in message


def test_wrong_task_read_from_config(home, tiny):
    with pytest.raises(ModelUnavailable, match="chat model"):
        resolve_model(str(tiny["llama"]), home, task="image-classification")
    with pytest.raises(ModelUnavailable, match="image model"):
        resolve_model(str(tiny["vit"]), home, task="chat")
    with pytest.raises(ModelUnavailable, match="cannot be used for chat"):
        resolve_model(str(tiny["bert"]), home, task="chat")
    # a decoder takes a classification head, so this is allowed
    assert resolve_model(str(tiny["llama"]), home, task="text-classification").model_type == "llama"


def test_hub_download_when_online(home, tmp_path, tiny, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tiny["llama"])

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    messages = []
    resolved = resolve_model("org/new-model", home, progress=messages.append)
    assert resolved.source == "hub" and calls[0][0] == "org/new-model"
    assert calls[0][1]["cache_dir"] == str(tmp_path / "hf-cache")
    assert messages and "org/new-model" in messages[0]


def test_download_progress_reaches_the_callback(monkeypatch):
    messages = []
    bar_class = hub._reporting_tqdm(messages.append, "org/model")
    monkeypatch.setattr(hub.time, "monotonic", iter([10.0, 11.0, 20.0]).__next__)
    bar = bar_class(total=300_000_000, unit="B", name="huggingface_hub.snapshot_download")
    bar.update(100_000_000)
    bar.update(100_000_000)  # within 2 s of the last message: not repeated
    bar.update(100_000_000)
    bar.close()
    assert messages == ["Downloading org/model: 100 of 300 MB", "Downloading org/model: 300 of 300 MB"]


# --- loading --------------------------------------------------------------------------------------
def test_load_tiny_causal_lm_and_tokenizer(home, tiny):
    resolved = resolve_model(str(tiny["llama"]), home)
    tokenizer = load_tokenizer(resolved)
    assert tokenizer.pad_token == "</s>"
    model = load_causal_lm(resolved)
    batch = tokenizer(["w1 w2 w3"], return_tensors="pt")
    assert model(**batch).logits.shape == (1, 3, 64)
    assert parameter_count(resolved) == sum(p.numel() for p in model.parameters())


def test_load_text_classifier_gets_a_new_head(home, tiny):
    resolved = resolve_model(str(tiny["bert"]), home)
    model = load_text_classifier(resolved, 3, {0: "a", 1: "b", 2: "c"})
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"} and model.config.label2id["c"] == 2
    assert model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 3)


def test_load_image_classifier(home, tiny):
    resolved = resolve_model(str(tiny["vit"]), home)
    model = load_image_classifier(resolved, 4, {i: str(i) for i in range(4)})
    assert model(pixel_values=torch.zeros(2, 3, 32, 32)).logits.shape == (2, 4)


def test_efficientnet_has_no_tokenizer(home):
    with pytest.raises(ModelUnavailable, match="not a transformers model"):
        load_tokenizer(resolve_model("efficientnet-lite0", home))


# --- the one-time SmolLM2 conversion --------------------------------------------------------------
def test_conversion_runs_once_under_concurrency(tmp_path, tiny, monkeypatch):
    calls = []

    def fake_write(gguf_path, out):
        calls.append(out)
        time.sleep(0.2)  # long enough for the second caller to arrive while the first converts
        _copy(tiny["llama"], out)

    monkeypatch.setattr(packaged, "_write_converted", fake_write)
    target = tmp_path / "models" / "smollm2-135m-instruct"
    (target.parent / ".smollm2-135m-instruct.tmp-999-killed").mkdir(parents=True)  # a crashed conversion
    results, messages = [], []
    threads = [threading.Thread(target=lambda: results.append(convert_smollm2(Path("x.gguf"), target,
                                                                              messages.append)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [target, target] and len(calls) == 1
    assert messages[0].startswith("Converting the packaged SmolLM2")
    assert sorted(p.name for p in target.parent.iterdir()) == [".smollm2-135m-instruct.lock",
                                                               "smollm2-135m-instruct"]


def test_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_write(gguf_path, out):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(packaged, "_write_converted", broken_write)
    target = tmp_path / "models" / "smollm2-135m-instruct"
    with pytest.raises(RuntimeError, match="disk full"):
        convert_smollm2(Path("x.gguf"), target)
    assert [p.name for p in target.parent.iterdir()] == [".smollm2-135m-instruct.lock"]


@pytest.fixture
def smollm2_home(converted_smollm2):
    """The session's one conversion of the packaged SmolLM2 (tests/conftest.py)."""
    return converted_smollm2


@pytest.mark.slow
def test_smollm2_converts_then_loads_from_the_cache(smollm2_home, monkeypatch):
    home, first, messages, convert_seconds = smollm2_home
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(home.root.parent / "hf-cache"))
    assert first.source == "packaged" and first.model_type == "llama"
    assert any("one time" in m for m in messages)
    assert (first.path / "model.safetensors").is_file() and (first.path / "tokenizer.json").is_file()
    assert model_status(first.entry, home) == "ready"

    started = time.perf_counter()
    again = resolve_model("smollm2-135m-instruct", home)
    tokenizer = load_tokenizer(again)
    model = load_causal_lm(again).eval()
    load_seconds = time.perf_counter() - started
    print(f"SmolLM2 conversion {convert_seconds:.1f} s, cached load {load_seconds:.2f} s")
    assert again.source == "studio-cache"
    assert load_seconds < 10  # ~0.2 s alone; generous for a busy 2-core machine
    assert abs(parameter_count(again) / 1e6 - 134.5) < 0.5

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
def test_minilm_takes_a_classification_head(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = ResolvedModel("minilm-l6", packaged.packaged_path(get_entry("minilm-l6")), "packaged",
                             "transformers", get_entry("minilm-l6"), "bert")
    tokenizer = load_tokenizer(resolved)
    model = load_text_classifier(resolved, 2, {0: "neg", 1: "pos"}).eval()
    with torch.no_grad():
        logits = model(**tokenizer(["a fine day", "awful"], padding=True, return_tensors="pt")).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()

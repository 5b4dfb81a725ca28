"""GGUF export on tiny llama- and qwen2-shaped models: the file reads back through transformers' GGUF reader with
the same weights, tokenizer and chat template (f32 exactly; the quantised types close), the Ollama template lays
conversations out as the chat template does, and what cannot be exported says so."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.cli import main
from core.export import ExportError
from core.export import gguf as G
from core.export import ollama
from tests import support_runs
from tests.test_chat_support import conversations, save_tiny_tokenizer, tiny_model_folder
from tests.test_classify_support import tiny_bert


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny"))
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(folder)


def _fields(path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    return reader, {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def test_a_tiny_llama_comes_back_from_f32_gguf_exactly(tiny, tmp_path):
    model, tokenizer = tiny
    path = tmp_path / "tiny-f32.gguf"
    G.write_gguf(model, tokenizer, path, "f32", name="tiny")
    reader, meta = _fields(path)
    assert meta["general.architecture"] == "llama" and meta["general.name"] == "tiny"
    assert meta["llama.block_count"] == 2 and meta["llama.embedding_length"] == 64
    assert meta["llama.attention.head_count"] == 4 and meta["llama.attention.head_count_kv"] == 2
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert len(meta["tokenizer.ggml.tokens"]) == model.config.vocab_size
    assert meta["tokenizer.ggml.eos_token_id"] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert meta["tokenizer.chat_template"] == tokenizer.chat_template
    assert "output.weight" not in {t.name for t in reader.tensors}  # tied embeddings: llama.cpp reuses token_embd
    check = G.check_gguf(path, model, tokenizer, prompts=["What colour is the sky?", "Are you sure?"])
    assert check["same_answers"] == 2 and check["same_tokenization"] and check["same_template"]
    assert check["max_logit_difference"] < 1e-5


def test_every_type_is_written_with_the_tensor_types_llama_cpp_expects(tiny, tmp_path):
    import gguf

    model, tokenizer = tiny
    sizes, T = {}, gguf.GGMLQuantizationType
    for kind, matrix, embedding in (("f16", T.F16, T.F16), ("q8_0", T.Q8_0, T.Q8_0), ("q5_1", T.Q5_1, T.Q8_0),
                                    ("q4_0", T.Q4_0, T.Q8_0)):
        path = tmp_path / f"tiny-{kind}.gguf"
        notes = G.write_gguf(model, tokenizer, path, kind)
        G.read_back(path, model.config, tokenizer)
        types = {t.name: t.tensor_type for t in gguf.GGUFReader(str(path)).tensors}
        assert types["blk.0.attn_q.weight"] == matrix and types["blk.1.ffn_down.weight"] == matrix
        assert types["token_embd.weight"] == embedding
        assert types["blk.0.attn_norm.weight"] == T.F32 and types["output_norm.weight"] == T.F32
        assert bool(notes) == (embedding != matrix)  # the kept embedding is reported
        sizes[kind] = path.stat().st_size
    assert sizes["f16"] > sizes["q8_0"] > sizes["q5_1"] > sizes["q4_0"]


def test_quantised_files_stay_close_to_the_model(tiny, tmp_path):
    model, tokenizer = tiny
    gaps = {}
    for kind in ("f16", "q8_0", "q4_0"):
        path = tmp_path / f"tiny-{kind}.gguf"
        G.write_gguf(model, tokenizer, path, kind)
        gaps[kind] = G.check_gguf(path, model, tokenizer, prompts=["What colour is the sky?"], max_new_tokens=4)[
            "max_logit_difference"]
    assert 0 < gaps["f16"] < gaps["q8_0"] < gaps["q4_0"] < 1.0


def test_a_tiny_qwen2_with_attention_biases_round_trips(tmp_path):
    from tokenizers import Regex, pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = save_tiny_tokenizer(tmp_path)
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(G.SPLIT_PATTERNS["qwen2"]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False)
    Qwen2ForCausalLM(config).save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert G.pre_tokenizer(tokenizer) == "qwen2"
    path = tmp_path / "qwen-f32.gguf"
    G.write_gguf(model, tokenizer, path, "f32")
    reader, meta = _fields(path)
    names = {t.name for t in reader.tensors}
    assert {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "output.weight"} <= names
    check = G.check_gguf(path, model, tokenizer, prompts=["What colour is the plum?"])
    assert check["same_answers"] == 1 and check["max_logit_difference"] < 1e-5 and check["same_tokenization"]


LLAMA3_LIKE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
    "{{ '<|start_header_id|>system<|end_header_id|>\n\nToday: 1 Jan\n\n' + system + '<|eot_id|>' }}"
    "{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] "
    "+ '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
PLAIN_CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.mark.parametrize("template, default", [(None, "You are a helpful assistant."), (PLAIN_CHATML, None),
                                               (LLAMA3_LIKE, "")])
def test_the_ollama_template_lays_conversations_out_like_the_chat_template(tmp_path, template, default):
    tokenizer = save_tiny_tokenizer(tmp_path)
    if template:
        tokenizer.chat_template = template
    parts = ollama.template_parts(tokenizer)
    assert parts.default_system == default
    for conversation in conversations(30):
        for cut in range(1, len(conversation) + 1):
            for generation in (True, False):
                expected = tokenizer.apply_chat_template(conversation[:cut], tokenize=False,
                                                         add_generation_prompt=generation)
                assert ollama.render_parts(parts, conversation[:cut], generation) == expected
    text = ollama.go_template(parts)
    assert "{{-" not in text and "{{ .Content }}" in text  # no whitespace trimming eats the turn newlines
    stops = ollama.stop_tokens(parts, tokenizer)
    assert tokenizer.eos_token in stops and all(s in parts.suffix["assistant"] or s == tokenizer.eos_token
                                                for s in stops)


def test_a_bos_the_tokenizer_adds_is_left_out_of_the_ollama_template(tmp_path):
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    save_tiny_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    tokenizer.chat_template = LLAMA3_LIKE
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", tokenizer.bos_token_id)])
    assert tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id
    parts = ollama.template_parts(tokenizer)
    assert parts.bos == "<|im_start|>" and "<|im_start|>" not in ollama.go_template(parts)
    assert ollama.render_parts(parts, conversations(1)[0], True) == tokenizer.apply_chat_template(
        conversations(1)[0], tokenize=False, add_generation_prompt=True)


def test_export_of_a_chat_run_writes_gguf_files_a_modelfile_and_a_readme(tmp_path_factory, tmp_path):
    run = support_runs.chat_run(tmp_path_factory)
    home = support_runs.home(tmp_path_factory)
    seen = []
    result = G.export_gguf(run.path, tmp_path / "out", home, types=["f16", "q8_0"],
                           progress=lambda message, fraction: seen.append(fraction), check=True)
    assert sorted(result.files) == ["f16", "q8_0"] and all(p.is_file() for p in result.files.values())
    assert result.ollama_file == result.files["q8_0"] and result.ollama_name == "tiny-chat"
    assert result.check["same_answers"] == result.check["prompts"] and result.check["same_tokenization"]
    modelfile = result.modelfile.read_text()
    assert f"FROM ./{result.files['q8_0'].name}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You are a helpful assistant."""' in modelfile
    readme = (result.folder / "README.md").read_text()
    assert "ollama create tiny-chat -f Modelfile" in readme and "greedy answers match" in readme
    assert "# The run's model card" in readme
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial folder left beside it


def test_the_cli_exports_gguf_and_refuses_a_classifier_run(tmp_path_factory, tmp_path, capsys):
    home = support_runs.home(tmp_path_factory)
    run = support_runs.chat_run(tmp_path_factory)
    assert main(["export", str(run.path), "--gguf", str(tmp_path / "g"), "--gguf-types", "q4_0",
                 "--home", str(home.root)]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith(str(tmp_path / "g")) and "ollama create tiny-chat" in out.err
    assert [p.name for p in (tmp_path / "g").glob("*.gguf")] == ["tiny-chat-q4_0.gguf"]
    classifier = support_runs.head_only_text_run(tmp_path_factory)
    assert main(["export", str(classifier.path), "--gguf", str(tmp_path / "h"), "--home", str(home.root)]) == 1
    assert "GGUF is a format for chat models" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def test_a_stopped_export_leaves_nothing(tmp_path_factory, tmp_path):
    run = support_runs.chat_run(tmp_path_factory)
    stop = threading.Event()
    stop.set()
    with pytest.raises(G.ExportStopped):
        G.export_gguf(run.path, tmp_path / "out", support_runs.home(tmp_path_factory), stop=stop)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_models_and_settings_are_refused_in_plain_words(tiny, tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    model, tokenizer = tiny
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(tokenizer)))
    with pytest.raises(ExportError, match="supports the llama and qwen2 architectures.*'gpt2'"):
        G.write_gguf(gpt2, tokenizer, tmp_path / "x.gguf")
    wordpiece = AutoTokenizer.from_pretrained(tiny_bert(tmp_path / "bert"))
    with pytest.raises(ExportError, match="byte-level BPE"):
        G.pre_tokenizer(wordpiece)
    with pytest.raises(ExportError, match="Unknown GGUF type.*q4_k_m"):
        G._check_types(["q4_k_m"])
    model.config.rope_parameters = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0}
    try:
        with pytest.raises(ExportError, match="'yarn' rotary scaling"):
            G.check_supported(model.config, tokenizer)
    finally:
        model.config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}


def test_llama3_rope_factors_follow_the_published_rule():
    from types import SimpleNamespace

    config = SimpleNamespace(model_type="llama", num_attention_heads=1, hidden_size=64, head_dim=64,
                             rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 8192})
    factors = G._llama3_rope_factors(config)
    freqs = 1.0 / 500000.0 ** (np.arange(0, 64, 2) / 64)
    wavelength = 2 * np.pi / freqs
    assert factors.shape == (32,) and factors.dtype == np.float32
    assert np.all(factors[wavelength < 8192 / 4] == 1.0) and np.all(factors[wavelength > 8192] == 32.0)
    middle = (wavelength >= 8192 / 4) & (wavelength <= 8192)
    assert np.all((factors[middle] >= 1.0) & (factors[middle] <= 32.0))
    assert np.all(np.diff(factors) >= 0)  # longer wavelengths are stretched at least as much

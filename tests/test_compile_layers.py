"""Regional torch.compile: which modules are the repeated blocks, and that compiled blocks can run eagerly."""
import torch
from transformers import AutoModelForCausalLM

from core.engine.chat.compile import CompileAfterFirstStep, eager, repeated_blocks, use_cache_in
from tests.test_chat_support import tiny_model_folder


def test_the_repeated_blocks_of_a_peft_wrapped_llama_are_its_decoder_layers(tmp_path):
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder(tmp_path))
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    blocks = repeated_blocks(wrapped)
    assert len(blocks) == model.config.num_hidden_layers
    assert {type(b).__name__ for b in blocks} == {"LlamaDecoderLayer"}


def test_no_blocks_in_a_model_without_a_repeated_stack():
    mixed = torch.nn.Sequential(torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.ReLU()]), torch.nn.Linear(2, 1))
    assert repeated_blocks(mixed) == []
    assert repeated_blocks(torch.nn.ModuleList([torch.nn.Linear(2, 2)])) == []  # one layer is no stack


def test_the_callback_compiles_before_the_second_step_only_once():
    class State:
        global_step = 0

    layers = torch.nn.ModuleList([torch.nn.Linear(3, 3) for _ in range(3)])
    lines = []
    callback = CompileAfterFirstStep(torch.nn.Sequential(layers), say=lines.append)
    state = State()
    callback.on_step_begin(None, state, None)
    assert not callback.done and all(layer._compiled_call_impl is None for layer in layers)
    state.global_step = 1
    callback.on_step_begin(None, state, None)
    callback.on_step_begin(None, state, None)
    assert callback.done and len(lines) == 1 and "3 layers" in lines[0]
    assert all(layer._compiled_call_impl is not None for layer in layers)
    x = torch.randn(2, 3)
    with eager():  # runs the plain module code: no compiler needed for this test
        assert torch.allclose(layers[0](x), torch.nn.functional.linear(x, layers[0].weight, layers[0].bias))


def test_the_kernel_cache_goes_to_the_studio_home_unless_the_user_chose(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    use_cache_in(tmp_path / "a")
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "a")
    use_cache_in(tmp_path / "b")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "a")
    from torch._inductor.runtime.cache_dir_utils import cache_dir, default_cache_dir

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setattr("os.makedirs", lambda *a, **k: None)
    cache_dir()  # what inductor does the first time it looks: writes its default into the variable
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == os.path.abspath(default_cache_dir())
    use_cache_in(tmp_path / "c")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "c")

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


def test_the_kernel_key_follows_what_the_kernels_depend_on():
    from types import SimpleNamespace

    from core.config import TrainConfig
    from core.engine.chat.compile import kernel_key

    config = SimpleNamespace(model_type="llama", hidden_size=576, intermediate_size=1536, num_attention_heads=9,
                             num_key_value_heads=3, head_dim=64, hidden_act="silu", _attn_implementation="sdpa")
    train = TrainConfig(lora_r=8, lora_alpha=16)
    key = kernel_key(config, "bf16", "lora", train)
    assert key == kernel_key(config, "bf16", "lora", TrainConfig(lora_r=8, lora_alpha=16, max_steps=99))
    assert key != kernel_key(config, "fp32", "lora", train)
    assert key != kernel_key(config, "bf16", "lora", TrainConfig(lora_r=16, lora_alpha=16))
    wider = SimpleNamespace(**{**vars(config), "hidden_size": 960})
    assert key != kernel_key(wider, "bf16", "lora", train)


def test_the_kernel_cache_remembers_warm_keys(tmp_path):
    from core.engine.chat.compile import KernelCache

    cache = KernelCache(tmp_path / "kernels")
    assert not cache.is_warm("abc")
    cache.mark_warm("abc", 42.0)
    assert cache.is_warm("abc") and KernelCache(tmp_path / "kernels").is_warm("abc")
    cache.mark_warm("def")
    assert cache.is_warm("abc") and cache.is_warm("def")
    (tmp_path / "kernels" / "studio-warm.json").write_text("not json")
    assert not cache.is_warm("abc")  # a damaged record only means compiling again


def test_the_fast_path_compiles_when_asked_or_when_the_kernels_are_cached(tmp_path):
    from peft import LoraConfig, get_peft_model

    from core.config import JobConfig
    from core.engine.chat.speed import FastPath

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_folder(tmp_path)),
                           LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj"]))
    auto = JobConfig(task="chat", strategy="lora")
    cold = FastPath.for_run(auto, tmp_path / "home", model, "fp32")
    assert not cold.compile and cold.automatic and "not compiled" in cold.describe()
    cold.attach(_Trainer(), model, say=print)
    assert len(cold.groups) == 2 and "2 LoRA groups fused" in cold.describe()  # q/k/v of each of 2 layers
    cold.detach()
    assert cold.groups == [] and not cold.wants_warmup  # a run of seconds starts no background compile
    cold.trained_s = 600
    assert cold.wants_warmup

    cold.cache.mark_warm(cold.key)
    warm = FastPath.for_run(auto, tmp_path / "home", model, "fp32")
    assert warm.compile and warm.automatic
    trainer = _Trainer()
    warm.attach(trainer, model, say=print)
    assert [type(c).__name__ for c in trainer.callbacks] == ["CompileAfterFirstStep"] and warm.groups == []
    off = FastPath.for_run(auto.with_overrides(["train.compile=false"]), tmp_path / "home", model, "fp32")
    assert not off.compile and not off.automatic
    assert FastPath.for_run(auto, tmp_path / "home", model, "bf16").key != warm.key


class _Trainer:
    def __init__(self):
        self.callbacks = []

    def add_callback(self, callback):
        self.callbacks.append(callback)

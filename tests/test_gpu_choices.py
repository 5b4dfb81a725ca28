"""The chat recipe's GPU branches (core/engine/chat/gpu.py, QLoRA's config), each checked on the CPU: what a GPU
run would choose, and that the choices are exact (packing, 4-bit weights) where a CPU can run them."""
from __future__ import annotations

import dataclasses
import types

import pytest
import torch

from core.config import JobConfig
from core.engine.chat import gpu
from core.hardware import Hardware
from core.memory import CATALOG_SHAPES, estimate_memory

CPU = Hardware("cpu", "CPU", 2, 24.0, 20.0, None, True)
H100 = Hardware("cuda", "H100", 16, 256.0, 200.0, 80.0, True)
T4 = Hardware("cuda", "T4", 4, 32.0, 28.0, 16.0, False)


def test_compute_dtype_and_attention_follow_the_device():
    assert gpu.compute_dtype(H100) == torch.bfloat16 and gpu.compute_dtype(T4) == torch.float16
    assert gpu.compute_dtype(CPU) == torch.bfloat16
    assert gpu.compute_dtype(dataclasses.replace(CPU, bf16=False)) == torch.float32
    assert gpu.attention_implementation(H100, flash_installed=True) == "flash_attention_2"
    assert gpu.attention_implementation(H100, flash_installed=False) == "sdpa"
    assert gpu.attention_implementation(CPU, flash_installed=True) == "sdpa"


def test_packing_only_on_a_gpu_and_where_the_attention_keeps_conversations_apart(tmp_path):
    from transformers import AutoModelForCausalLM

    from tests.test_chat_support import tiny_model_folder

    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder(tmp_path))
    assert gpu.packing_is_exact(model)
    assert gpu.use_packing(H100, model) and not gpu.use_packing(CPU, model)
    model.config.model_type = "some-new-arch"
    assert not gpu.use_packing(H100, model)


def test_packed_rows_train_like_padded_rows(tmp_path):
    """What the GPU recipe does (one packed row, restarting position ids) gives the padded loss and gradients."""
    from transformers import AutoModelForCausalLM

    from core.engine.chat.collate import PackedCollator, PaddedCollator, encode_all
    from core.engine.chat.loss import answer_loss_sum
    from tests.test_chat_support import conversations, save_tiny_tokenizer, tiny_model_folder

    folder = tiny_model_folder(tmp_path)
    tokenizer = save_tiny_tokenizer(tmp_path / "tok")
    rows = encode_all(tokenizer, conversations(4), 96)
    model = AutoModelForCausalLM.from_pretrained(folder)
    results = []
    for collate in (PaddedCollator(tokenizer.pad_token_id), PackedCollator()):
        model.zero_grad()
        loss, count = answer_loss_sum(model, collate(rows))
        loss.backward()
        results.append((loss.item(), count, model.model.layers[0].mlp.up_proj.weight.grad.clone()))
    (padded, n1, g1), (packed, n2, g2) = results
    assert n1 == n2 and packed == pytest.approx(padded, rel=1e-4)
    torch.testing.assert_close(g2, g1, rtol=1e-3, atol=1e-5)


def test_liger_patches_only_on_a_gpu_and_never_the_loss():
    calls = []
    liger = types.SimpleNamespace(_apply_liger_kernel_to_instance=lambda **kw: calls.append(kw))
    model = object()
    assert not gpu.apply_liger(model, CPU, module=liger) and not calls
    assert gpu.apply_liger(model, H100, module=liger)
    assert calls[0]["model"] is model and calls[0]["rms_norm"] and calls[0]["swiglu"] and calls[0]["rope"]
    assert not calls[0]["fused_linear_cross_entropy"] and not calls[0]["cross_entropy"]  # the loss is ours

    def unsupported(**kw):
        raise NotImplementedError("no Liger kernels for this architecture")

    assert not gpu.apply_liger(model, H100, module=types.SimpleNamespace(_apply_liger_kernel_to_instance=unsupported))
    assert not gpu.apply_liger(model, H100, module=types.SimpleNamespace())


def test_the_memory_estimate_chooses_checkpointing_and_paged_8bit_states_on_a_gpu():
    seven_b = CATALOG_SHAPES["qwen2.5-7b-instruct"]
    lora = JobConfig(task="chat", strategy="lora")
    tight = estimate_memory(seven_b, "lora", "chat", 4, 1024, dataclasses.replace(H100, gpu_memory_gb=24.0),
                            bf16_weights=True)
    choices = gpu.device_choices(lora, H100, tight)
    assert choices.gradient_checkpointing and choices.packing and choices.attention in ("sdpa", "flash_attention_2")
    assert any("checkpointing" in note for note in choices.notes)
    full = estimate_memory(seven_b, "full", "chat", 4, 1024, dataclasses.replace(H100, gpu_memory_gb=64.0),
                           bf16_weights=True)
    assert gpu.device_choices(JobConfig(task="chat", strategy="full"), H100, full, bitsandbytes=True).optimizer \
        == "paged_adamw_8bit"
    assert gpu.device_choices(JobConfig(task="chat", strategy="full"), H100, full, bitsandbytes=False).optimizer \
        == "adamw_torch"  # without bitsandbytes the plain optimiser (the estimate's warning stands)
    on_cpu = gpu.device_choices(lora, CPU, None)
    assert on_cpu == gpu.DeviceChoices()  # nothing changes on a CPU


def test_qlora_4bit_weights_train_on_the_cpu_in_the_gpu_compute_dtype(tmp_path):
    """bitsandbytes NF4 with double quantisation and bf16 compute (the GPU recipe's config) runs on the CPU too."""
    pytest.importorskip("bitsandbytes")
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from core.strategies import quantization_config
    from tests.test_chat_support import tiny_model_folder

    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder(tmp_path), dtype=torch.bfloat16,
                                                 quantization_config=quantization_config(torch.bfloat16),
                                                 device_map="cpu")
    layer = model.model.layers[0].mlp.up_proj
    assert type(layer).__name__ == "Linear4bit" and layer.compute_dtype == torch.bfloat16
    model = get_peft_model(prepare_model_for_kbit_training(model, use_gradient_checkpointing=False),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj", "up_proj"]))
    ids = torch.randint(3, 300, (2, 12))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.slow
def test_the_gpu_bench_runs_its_code_path_on_a_tiny_model(tmp_path):
    """`python -m bench.gpu --smoke`: QLoRA (NF4 on this device) and LoRA, ours and Trainer+peft, in one process."""
    import json
    import subprocess
    import sys

    from bench.common import ROOT, bench_env

    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu", "--smoke", "--json", str(out)], cwd=ROOT,
                          env=bench_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["strategy"] for r in report["details"]["results"]] == ["qlora", "lora"]
    for result in report["details"]["results"]:
        assert result["ours"]["tokens_per_s"] > 0 and result["reference"]["tokens_per_s"] > 0
    assert len(report["rows"]) == 2 and all(r["unit"] == "x" for r in report["rows"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu_check.sh runs it there)")
@pytest.mark.parametrize("strategy", ["lora", "qlora"])
def test_the_chat_recipe_trains_on_a_gpu_in_bf16_with_packed_rows(tmp_path, strategy):
    if strategy == "qlora":
        pytest.importorskip("bitsandbytes")
    from core.engine.chat import ChatRecipe
    from tests.test_chat_support import context

    ctx, sink = context(tmp_path, strategy, precision="bf16", learning_rate=1e-2, epochs=1.0)
    recipe = ChatRecipe(ctx)
    recipe.setup()
    assert recipe.device.packing and recipe.device.attention in ("sdpa", "flash_attention_2")
    outcome = recipe.train()
    recipe.save()
    losses = [e["loss"] for e in sink.of_type("train") if "loss" in e]
    assert outcome.global_step == 12 and losses[-1] < losses[0]
    report = recipe.evaluate()
    assert report["tuned"]["eval_loss"] < report["base"]["eval_loss"]
    recipe.cleanup()

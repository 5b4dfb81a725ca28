"""Fused LoRA projections (core/engine/chat/fused.py): the same loss and gradients as peft, fewer operations, and
peft's own behaviour (disable_adapter, saving, unfusing) intact."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.engine.chat.fused import fuse_lora, unfuse_lora
from tests.test_chat_support import tiny_model_folder

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _lora_model(tmp_path, dtype=torch.float32, dropout=0.0, targets=ALL):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder(tmp_path), dtype=dtype)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=targets))
    g = torch.Generator().manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: give the adapters something to say
            p.data.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _step(model, ids, autocast=False):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    return out.loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


IDS = torch.randint(3, 300, (3, 17), generator=torch.Generator().manual_seed(2))


def test_fused_groups_give_peft_loss_and_gradients_in_fp32(tmp_path):
    model = _lora_model(tmp_path)
    loss, grads = _step(model, IDS)
    groups = fuse_lora(model)
    sizes = sorted(len(g.members) for g in groups)
    assert sizes == [1, 1, 1, 1, 2, 2, 3, 3]  # per layer: q/k/v, gate/up, and o, down alone
    fused_loss, fused_grads = _step(model, IDS)
    assert fused_loss == pytest.approx(loss, rel=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-6)
    unfuse_lora(groups)
    assert _step(model, IDS)[0] == pytest.approx(loss, rel=1e-6)


def test_the_frozen_weights_are_views_of_one_buffer_per_group(tmp_path):
    model = _lora_model(tmp_path)
    before = sum(p.numel() for p in model.parameters())
    groups = fuse_lora(model)
    qkv = next(g for g in groups if len(g.members) == 3)
    q, k, v = (m.get_base_layer().weight for m in qkv.members)
    assert q.data_ptr() == qkv.weight.data_ptr()
    assert k.data_ptr() == qkv.weight.data_ptr() + q.numel() * q.element_size()
    assert sum(p.numel() for p in model.parameters()) == before
    assert not any(p.requires_grad for p in (q, k, v))


def test_bf16_autocast_gradients_are_as_close_to_fp32_as_peft(tmp_path):
    reference = _step(_lora_model(tmp_path), IDS)[1]
    peft_bf16 = _step(_lora_model(tmp_path, torch.bfloat16), IDS, autocast=True)[1]
    fused = _lora_model(tmp_path, torch.bfloat16)
    fuse_lora(fused)
    fused_bf16 = _step(fused, IDS, autocast=True)[1]

    def error(grads):
        num = sum(((grads[k].float() - reference[k]) ** 2).sum() for k in reference)
        return float((num / sum((g ** 2).sum() for g in reference.values())).sqrt())

    assert {g.dtype for g in fused_bf16.values()} == {torch.float32}  # the adapters' gradients stay fp32
    assert error(fused_bf16) <= error(peft_bf16) * 1.25 + 1e-3


def test_disabled_adapters_and_saving_behave_as_peft(tmp_path):
    model = _lora_model(tmp_path)
    with model.disable_adapter(), torch.no_grad():
        base = model(input_ids=IDS).logits
    fuse_lora(model)
    with model.disable_adapter(), torch.no_grad():
        torch.testing.assert_close(model(input_ids=IDS).logits, base)
    model.save_pretrained(tmp_path / "adapter")
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert saved and all("lora_" in name for name in saved)


def test_layers_it_cannot_compute_exactly_keep_peft(tmp_path):
    assert fuse_lora(_lora_model(tmp_path, dropout=0.1)) == []  # dropout masks differ per projection
    only_q = fuse_lora(_lora_model(tmp_path, targets=["q_proj", "v_proj"]))
    assert sorted(len(g.members) for g in only_q) == [1, 1, 1, 1]  # no complete group: each alone


def test_a_member_called_with_another_input_computes_its_own(tmp_path):
    model = _lora_model(tmp_path)
    attention = model.base_model.model.model.layers[0].self_attn
    x, y = torch.randn(2, 5, 64), torch.randn(2, 5, 64)
    expected_k = attention.k_proj(y)
    fuse_lora(model)
    attention.q_proj(x)  # stashes k and v for x
    torch.testing.assert_close(attention.k_proj(y), expected_k)

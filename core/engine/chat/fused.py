"""Fewer, larger operations for LoRA training on a CPU: one matmul per group of projections that share an input.

A LoRA step on a small model spends most of its time outside the big matmuls: peft runs each adapted projection
as base matmul, input cast, A matmul, B matmul, scale and add, with autograd recording every one, and the
projections that read the same input (q, k, v; gate, up) each repeat that work. Here each such group runs as one
``torch.autograd.Function``: one matmul against the group's frozen weights (kept in one buffer, the original
weights become views of it, so no memory is added), one matmul for the stacked A matrices, one small matmul per B,
and a hand-written backward with the same few matmuls (no gradient for the frozen weights). Projections outside a
group get the same treatment one at a time.

The parameters stay peft's own ``lora_A``/``lora_B`` weights: saving, loading, merging and ``disable_adapter``
behave as before, and any layer this module cannot speed up exactly (dropout, several adapters, DoRA, a merged or
quantised layer) keeps peft's forward. ``bench/chat_lora.py`` measures what it gains.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Projections that read the same tensor, by the names transformers' decoder models give them.
SHARED_INPUT_GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class _GroupLoRA(torch.autograd.Function):
    """y_i = x W_i^T + b_i + s_i (x A_i^T) B_i^T for the projections i of a group, as few matmuls as possible.

    ``weight`` is the group's frozen weights stacked by rows; ``a`` the stacked A matrices; ``bs`` the B
    matrices; ``splits`` the output width of each projection, ``ranks`` their ranks.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, a, scales, splits, ranks, dtype, *bs):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(dtype)
        w = weight.to(dtype)
        a_c = a.to(dtype)
        b_c = [b.to(dtype) for b in bs]
        y = F.linear(x2, w, None if bias is None else bias.to(dtype))
        xa = x2 @ a_c.t()
        start = rank_start = 0
        for width, rank, scale, b in zip(splits, ranks, scales, b_c):
            y[:, start:start + width].addmm_(xa[:, rank_start:rank_start + rank], b.t(), alpha=scale)
            start, rank_start = start + width, rank_start + rank
        ctx.save_for_backward(x2, xa, w, a_c, *b_c)
        ctx.meta = (shape, splits, ranks, scales, x.dtype, a.dtype, [b.dtype for b in bs], bias is not None)
        outs = y.split(list(splits), dim=1)
        return tuple(o.view(*shape[:-1], o.shape[-1]) for o in outs)

    @staticmethod
    def backward(ctx, *grads):
        x2, xa, w, a_c, *b_c = ctx.saved_tensors
        shape, splits, ranks, scales, x_dtype, a_dtype, b_dtypes, has_bias = ctx.meta
        dtype = x2.dtype
        dys = [torch.zeros(x2.shape[0], width, dtype=dtype, device=x2.device) if g is None
               else g.reshape(-1, width).to(dtype) for g, width in zip(grads, splits)]
        dy = dys[0] if len(dys) == 1 else torch.cat(dys, dim=1)
        dxa = torch.empty(x2.shape[0], sum(ranks), dtype=dtype, device=x2.device)
        d_bs = []
        rank_start = 0
        for dy_i, rank, scale, b in zip(dys, ranks, scales, b_c):
            xa_i = xa[:, rank_start:rank_start + rank]
            torch.mm(dy_i, b, out=dxa[:, rank_start:rank_start + rank]).mul_(scale)
            d_bs.append((dy_i.t() @ xa_i).mul_(scale))
            rank_start += rank
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.addmm(dy @ w, dxa, a_c).view(shape).to(x_dtype)
        da = (dxa.t() @ x2).to(a_dtype)
        d_bias = dy.sum(0) if has_bias and ctx.needs_input_grad[2] else None
        d_bs = [g.to(t) for g, t in zip(d_bs, b_dtypes)]
        return (dx, None, d_bias, da, None, None, None, None, *d_bs)


@dataclass
class _Stash:
    """The outputs a group computed for its other members, kept until each member asks for its own."""

    source: torch.Tensor | None = None
    outputs: dict | None = None


def _plain_lora(layer) -> bool:
    """Whether ``layer`` is a peft LoRA Linear this module computes exactly: one active plain adapter, no
    dropout, not merged, a float (not quantised) base weight."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    if type(layer) is not LoraLinear or layer.merged or getattr(layer, "fan_in_fan_out", False):
        return False
    names = layer.active_adapters
    if len(names) != 1 or names[0] not in layer.lora_A or getattr(layer, "lora_variant", {}).get(names[0]):
        return False
    dropout = layer.lora_dropout[names[0]]
    base = layer.get_base_layer()
    return isinstance(dropout, torch.nn.Identity) and type(base) is torch.nn.Linear and base.weight.is_floating_point()


class FusedGroup:
    """Runs the LoRA projections ``members`` (same input, same parent) as one ``_GroupLoRA``.

    The first member called computes every member's output and stashes the others' for the same input tensor;
    a member called with any other input computes its own alone (still one Function).
    """

    def __init__(self, members: list):
        self.members = members
        self.stash = _Stash()
        self._stack_weights()
        for layer in members:
            layer._studio_group = self
            layer._studio_forward = layer.forward
            layer.forward = self._forward_for(layer)

    def _stack_weights(self) -> None:
        """One buffer for the group's frozen weights; each member's weight becomes a view of it (no copy kept)."""
        weights = [m.get_base_layer().weight for m in self.members]
        if len(weights) == 1:
            self.weight = weights[0]
            return
        stacked = torch.cat([w.detach() for w in weights], dim=0)
        start = 0
        for m, w in zip(self.members, weights):
            rows = w.shape[0]
            m.get_base_layer().weight = torch.nn.Parameter(stacked[start:start + rows], requires_grad=False)
            start += rows
        self.weight = stacked

    def _bias(self):
        biases = [m.get_base_layer().bias for m in self.members]
        if all(b is None for b in biases):
            return None
        return torch.cat([b if b is not None else torch.zeros(m.get_base_layer().out_features, dtype=self.weight.dtype)
                          for b, m in zip(biases, self.members)])

    def _forward_for(self, layer):
        def forward(x, *args, **kwargs):
            if args or kwargs or layer.disable_adapters or not _plain_lora(layer) or not self._intact():
                return layer._studio_forward(x, *args, **kwargs)
            stash = self.stash
            if stash.source is x and layer in stash.outputs:
                out = stash.outputs.pop(layer)
                if not stash.outputs:
                    self.stash = _Stash()
                return out
            outputs = self._run(x)
            mine = outputs.pop(layer)
            self.stash = _Stash(x, outputs) if outputs else _Stash()
            return mine
        return forward

    def _intact(self) -> bool:
        """Whether the members' weights are still views of the stacked buffer (``model.to(...)`` replaces them)."""
        weight = self.members[0].get_base_layer().weight
        return weight.dtype == self.weight.dtype and weight.data_ptr() == self.weight.data_ptr()

    def _run(self, x: torch.Tensor) -> dict:
        members = self.members
        name = [m.active_adapters[0] for m in members]
        a = torch.cat([m.lora_A[n].weight for m, n in zip(members, name)], dim=0) if len(members) > 1 \
            else members[0].lora_A[name[0]].weight
        bs = [m.lora_B[n].weight for m, n in zip(members, name)]
        splits = tuple(m.get_base_layer().out_features for m in members)
        ranks = tuple(m.r[n] for m, n in zip(members, name))
        scales = tuple(float(m.scaling[n]) for m, n in zip(members, name))
        outs = _GroupLoRA.apply(x, self.weight, self._bias(), a, scales, splits, ranks, _compute_dtype(x), *bs)
        return dict(zip(members, outs))

    def restore(self) -> None:
        """Give each member its peft forward back (the stacked weights stay: they are the same values)."""
        for layer in self.members:
            layer.forward = layer._studio_forward
            del layer._studio_forward, layer._studio_group


def fuse_lora(model: torch.nn.Module) -> list[FusedGroup]:
    """Make ``model``'s plain LoRA projections run through ``_GroupLoRA``, grouped where they share an input.

    Returns the groups (``restore()`` undoes each); an empty list when there is nothing to fuse.

    Args:
        model: a peft-wrapped model (LoRA) whose base weights are plain float ``nn.Linear`` layers.
    """
    groups: list[FusedGroup] = []
    done: set[int] = set()
    for parent in model.modules():
        children = dict(parent.named_children())
        for names in SHARED_INPUT_GROUPS:
            members = [children.get(n) for n in names]
            if all(m is not None and _plain_lora(m) for m in members) and _compatible(members):
                groups.append(FusedGroup(members))
                done.update(id(m) for m in members)
    for module in model.modules():
        if id(module) not in done and _plain_lora(module):
            groups.append(FusedGroup([module]))
            done.add(id(module))
    return groups


def _compatible(members: list) -> bool:
    """Members can share one A matmul: same input width, same weight dtype, same adapter name."""
    bases = [m.get_base_layer() for m in members]
    names = {m.active_adapters[0] for m in members}
    return len({b.in_features for b in bases}) == 1 and len({b.weight.dtype for b in bases}) == 1 and len(names) == 1


def unfuse_lora(groups: list[FusedGroup]) -> None:
    """Undo ``fuse_lora``."""
    for group in groups:
        group.restore()

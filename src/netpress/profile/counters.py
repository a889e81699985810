"""Exact counts: parameters, nonzeros, bits, bytes and MACs per layer.

MACs are counted from the shapes seen in one forward pass at batch 1, exactly for
Linear and Conv1d/2d (out elements × inputs per output); other layers count 0 MACs.
These are counts, never speed: latency is measured in ``timing.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..batches import call


@dataclass
class LayerCount:
    """Counts for one leaf module."""

    name: str
    type: str
    shape: list[int]
    params: int
    nonzero: int
    bits_per_weight: float
    bytes: int
    macs: int
    latency_share: float | None = None

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def _leaf_modules(model: nn.Module):
    for name, m in model.named_modules():
        # parametrized modules have a ParametrizationList child; treat them as leaves
        kids = [c for n, c in m.named_children() if n != "parametrizations"]
        if not kids and name:
            yield name, m
        elif not name and not kids:
            yield "model", m


def _own_tensors(m: nn.Module) -> list[torch.Tensor]:
    """The module's parameters and float buffers, through parametrizations."""
    names = [n for n, _ in m.named_parameters(recurse=False)]
    if hasattr(m, "parametrizations"):
        names += list(m.parametrizations.keys())
    seen, out = set(), []
    for n in names:
        if n in seen:
            continue
        seen.add(n)
        t = getattr(m, n, None)
        if isinstance(t, torch.Tensor):
            out.append(t.detach())
    return out


def count_params(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def count_nonzero(model: nn.Module) -> int:
    """Parameters that are not exactly zero, as the model computes with them
    (through any pruning masks); a tensor shared by several layers (GPT-2's output layer
    is its embedding) is counted once, like ``count_params`` does.

    Example:
        >>> m = nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 4, bias=False))
        >>> m[1].weight = m[0].weight
        >>> count_nonzero(m) == count_params(m) == 8
        True
    """
    seen, alive, total = set(), [], 0
    for _, m in _leaf_modules(model):
        for t in _own_tensors(m):
            alive.append(t)  # a masked weight is computed afresh: keep it so no address is reused
            key = (t.data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
            if t.numel() and key in seen:
                continue
            seen.add(key)
            total += int(torch.count_nonzero(t))
    return total


def _mac_hook(store: dict, name: str):
    def hook(mod, inputs, output):
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(mod, nn.Linear):
            store[name] = store.get(name, 0) + output.numel() * mod.in_features
        elif isinstance(mod, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            k = 1
            for s in mod.kernel_size:
                k *= s
            store[name] = store.get(name, 0) + output.numel() * (mod.in_channels // mod.groups) * k

    return hook


@torch.inference_mode()
def count_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """MACs of each leaf module for one forward pass of ``example`` (use batch 1).

    Example:
        >>> from netpress.zoo import build_model
        >>> sum(count_macs(build_model("lenet-300-100"), torch.zeros(1, 1, 28, 28)).values())
        266200
    """
    store: dict[str, int] = {}
    handles = [m.register_forward_hook(_mac_hook(store, n)) for n, m in _leaf_modules(model)]
    was_training = model.training
    model.eval()
    try:
        call(model, example)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return store


def layer_counts(model: nn.Module, example: torch.Tensor) -> list[LayerCount]:
    """Per-layer counts for every leaf module that has weights or MACs."""
    macs = count_macs(model, example)
    rows = []
    for name, m in _leaf_modules(model):
        tensors = _own_tensors(m)
        params = sum(t.numel() for t in tensors)
        if params == 0 and macs.get(name, 0) == 0:
            continue
        weight = getattr(m, "weight", None)
        shape = list(weight.shape) if isinstance(weight, torch.Tensor) else []
        bits = float(getattr(m, "netpress_bits", 0) or (
            tensors[0].element_size() * 8 if tensors else 32))
        rows.append(
            LayerCount(
                name=name,
                type=type(m).__name__,
                shape=shape,
                params=params,
                nonzero=sum(int(torch.count_nonzero(t)) for t in tensors),
                bits_per_weight=bits,
                bytes=int(round(params * bits / 8)),
                macs=macs.get(name, 0),
            )
        )
    return rows

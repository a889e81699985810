"""Save and load weight-only quantized models with packed codes, as safetensors.

For each ``FixedQuant`` weight ``L.weight`` the file holds ``L.weight.codes`` (uint8, the
packed bit stream), ``L.weight.scale`` (float16) and, if asymmetric, ``L.weight.zero``
(uint8); bits, group size and shape are in the header metadata. Every other tensor of the
state dict (biases, norms, embeddings) is stored as it is. The file is really smaller:
a 4-bit group-128 weight costs 4 + 16/128 + 8/128 ≈ 4.19 bits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...errors import FormatError
from ...io import load_weights, save_weights
from .pack import pack_codes, unpack_codes
from .primitives import as_matrix, expand_to, qrange
from .weight_only import FixedQuant, set_fixed_quant


def _fixed(model: nn.Module) -> dict[str, tuple[nn.Module, FixedQuant]]:
    out = {}
    for name, mod in model.named_modules():
        if parametrize.is_parametrized(mod, "weight"):
            ps = [p for p in mod.parametrizations.weight if isinstance(p, FixedQuant)]
            if ps:
                out[name] = (mod, ps[0])
    return out


def packed_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata ``save_packed`` writes."""
    fixed = _fixed(model)
    state: dict[str, torch.Tensor] = {}
    layout = {}
    for name, mod in fixed.items():
        m, fq = mod
        w = m.weight.detach()
        codes = fq.codes(w)
        state[f"{name}.weight.codes"] = pack_codes(codes, fq.bits)
        state[f"{name}.weight.scale"] = fq.scale.detach().half()
        if not fq.symmetric:
            state[f"{name}.weight.zero"] = fq.zero_point.round().to(torch.uint8)
        layout[name] = {"bits": fq.bits, "group_size": fq.group_size,
                        "symmetric": fq.symmetric, "shape": list(w.shape)}
    skip = {f"{n}.parametrizations.weight.original" for n in fixed} | {
        k for n in fixed for k in model.state_dict() if k.startswith(f"{n}.parametrizations.")}
    for k, v in model.state_dict().items():
        if k not in skip:
            state[k] = v
    return state, {"netpress_quant": json.dumps(layout, sort_keys=True)}


def save_packed(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``model`` with packed weight codes to ``path`` (safetensors, atomic).

    Example:
        >>> save_packed(model, "w4.safetensors")  # doctest: +SKIP
    """
    state, meta = packed_state(model)
    return save_weights(state, path, {**meta, **(metadata or {})})


def load_packed(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a ``save_packed`` file into a float ``model`` of the same architecture: each
    packed weight is rebuilt and gets its ``FixedQuant`` grid back.

    Example:
        >>> m = load_packed(build_model("lenet-300-100"), "w4.safetensors")  # doctest: +SKIP
    """
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "netpress_quant" not in meta:
        raise FormatError(f"{path} has no packed quantized weights (no 'netpress_quant' "
                          "metadata); save it with save_packed")
    layout = json.loads(meta["netpress_quant"])
    state = load_weights(path)
    mods = dict(model.named_modules())
    for name, lay in layout.items():
        if name not in mods:
            raise FormatError(f"{path}: layer {name!r} is not in the model")
        bits, gs, sym, shape = lay["bits"], lay["group_size"], lay["symmetric"], lay["shape"]
        n = int(torch.tensor(shape).prod())
        codes = unpack_codes(state.pop(f"{name}.weight.codes"), bits, n)
        scale = state.pop(f"{name}.weight.scale").float()
        qmin, _ = qrange(bits, sym)
        zp = state.pop(f"{name}.weight.zero").float() if not sym else torch.zeros_like(scale)
        m = codes.reshape(shape[0], -1).float() + qmin
        w = torch.empty(shape)
        try:
            q = (m - expand_to(zp, w, gs or 1)) * expand_to(scale, w, gs or 1)
            set_fixed_quant(mods[name], q.reshape(shape), scale, zp, bits, sym, gs)
        except RuntimeError as e:  # shapes of another architecture (e.g. a pruned model)
            raise FormatError(f"{path}: layer {name!r} does not fit the model ({e}); it was "
                              "saved from another architecture") from e
    own = {k for k in model.state_dict() if ".parametrizations." not in k}
    missing = own - set(state)
    if missing:
        raise FormatError(f"{path} lacks {sorted(missing)[:3]}; it was saved from another model")
    model.load_state_dict(state, strict=False)
    return model


def weight_bits(model: nn.Module) -> float:
    """Mean stored bits per quantized weight (codes + float16 scales + uint8 zeros)."""
    total_bits, total = 0.0, 0
    for _, (m, fq) in _fixed(model).items():
        n = as_matrix(m.weight).numel()
        total_bits += n * fq.bits + fq.scale.numel() * (16 + (0 if fq.symmetric else 8))
        total += n
    return total_bits / total if total else 32.0

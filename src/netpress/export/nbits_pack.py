"""The layers ``export.nbits`` converts, and their MatMulNBits / GatherBlockQuantized blocks.

``plan_layer`` reads a layer's ``FixedQuant`` grid (bits, group size, scales, zero points,
integer codes) and chooses the block size; ``pack_matmul`` and ``pack_gather`` write the
codes, scales and zero points in the byte layout ONNX Runtime's contrib ops read (4-bit
codes two per byte, element ``2i`` in the low nibble; zero points packed the same way;
scales float32). Groups map to blocks as the ``export.nbits`` docstring explains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ModelError

BITS = (4, 8)
MAX_BLOCK = 256  # the largest block MLAS has packed kernels for


@dataclass
class NbitsLayer:
    """One quantized layer in MatMulNBits form: ``codes [N, K]`` (unsigned), per-block
    ``scale``/``zero [N, k_blocks]`` and the torch weight they rebuild."""

    name: str
    kind: str  # "linear" | "embedding"
    bits: int
    block: int
    codes: np.ndarray
    zero: np.ndarray
    scale: np.ndarray
    weight: np.ndarray  # the dequantized weight torch uses, [N, K]

    @property
    def symmetric_default(self) -> bool:
        """Every zero point is ORT's default ``2^(bits-1)``: the input can be left out."""
        return bool((self.zero == 2 ** (self.bits - 1)).all())


def block_size_for(group_size: int, k: int) -> int:
    """The MatMulNBits block for a ``group_size`` (0 = per channel) along ``k`` inputs:
    a power of two in 16..256 that divides the group (so no block straddles two groups),
    no longer than ``k`` needs.

    Example:
        >>> block_size_for(128, 384), block_size_for(48, 96), block_size_for(0, 40)
        (128, 16, 64)
    """
    if group_size and group_size % 16:
        raise ModelError(f"group size {group_size} is not a multiple of 16; MatMulNBits "
                         "blocks are 16..256 (powers of two): quantize with group_size "
                         "16, 32, 64, 128… or 0 (per channel)")
    fit = max(16, 1 << max(0, (k - 1).bit_length()))  # smallest power of two >= k
    block = 128 if not group_size else group_size & -group_size  # lowest set bit
    return min(block, MAX_BLOCK, fit)


def _fixed_quant(mod: nn.Module):
    from ..techniques.quantize.weight_only import FixedQuant

    if not parametrize.is_parametrized(mod, "weight"):
        return None
    return next((p for p in mod.parametrizations.weight if isinstance(p, FixedQuant)), None)


@torch.no_grad()
def plan_layer(name: str, mod: nn.Module) -> NbitsLayer:
    """The MatMulNBits codes, scales and zero points of a ``FixedQuant`` Linear or
    Embedding, checked to rebuild its weight exactly."""
    from ..techniques.quantize.primitives import expand_to, qrange

    fq = _fixed_quant(mod)
    kind = "embedding" if isinstance(mod, nn.Embedding) else "linear"
    if fq.bits not in BITS:
        raise ModelError(f"layer {name!r} has {fq.bits}-bit weights; the MatMulNBits export "
                         f"takes {' or '.join(map(str, BITS))} bits")
    w = mod.weight.detach().float()  # what torch computes with
    n, k = w.shape
    block = block_size_for(fq.group_size, k)
    qmin, qmax = qrange(fq.bits, fq.symmetric)
    s = fq.step().detach().float()
    z = fq.zero_point.detach().float()
    if not torch.equal(z, z.round()) or z.min() < qmin or z.max() > qmax:
        raise ModelError(f"layer {name!r} has zero points that are not integers in "
                         f"{qmin}..{qmax}; MatMulNBits stores them as uint{fq.bits}")
    if s.shape[1] != (-(-k // fq.group_size) if fq.group_size else 1):
        raise ModelError(f"layer {name!r}: scale shape {tuple(s.shape)} does not match "
                         f"{k} inputs in groups of {fq.group_size}")
    s, z = s.expand(n, s.shape[1]), z.expand(n, z.shape[1])  # a per-tensor grid too
    gs = fq.group_size or 1
    se, ze = expand_to(s, w, gs), expand_to(z, w, gs)
    q = torch.clamp(torch.round(w / se) + ze, qmin, qmax)
    rebuilt = (q - ze) * se
    if not torch.allclose(rebuilt, w, rtol=1e-6, atol=1e-7 * float(w.abs().max())):
        raise ModelError(f"layer {name!r}: its weight is not on its FixedQuant grid (another "
                         "parametrization after the quantizer?); bake or re-quantize it")
    kb = -(-k // block)
    col = np.arange(kb) * block  # first input of each block
    grp = col // fq.group_size if fq.group_size else np.zeros(kb, np.int64)
    return NbitsLayer(name, kind, fq.bits, block,
                      codes=(q - qmin).to(torch.uint8).numpy(),
                      zero=(z[:, grp] - qmin).to(torch.uint8).numpy(),
                      scale=s[:, grp].numpy().astype(np.float32),
                      weight=w.numpy())


def _pack4(x: np.ndarray) -> np.ndarray:
    """Two 4-bit values per byte along the last axis, the first in the low nibble."""
    if x.shape[-1] % 2:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), np.uint8)], -1)
    return (x[..., 0::2] | (x[..., 1::2] << 4)).astype(np.uint8)


def pack_matmul(layer: NbitsLayer) -> tuple[np.ndarray, np.ndarray]:
    """MatMulNBits ``B [N, k_blocks, block·bits/8]`` and zero points (``[N, ⌈k_blocks/2⌉]``
    for 4 bits, ``[N, k_blocks]`` for 8) of a layer; the K tail is padded with the zero point.

    Example:
        >>> lay = NbitsLayer("l", "linear", 4, 16, np.full((1, 20), 3, np.uint8),
        ...                  np.array([[8, 1]], np.uint8), np.ones((1, 2), np.float32), None)
        >>> b, z = pack_matmul(lay); b.shape, hex(b[0, 0, 0]), hex(b[0, 1, 2]), z.tolist()
        ((1, 2, 8), '0x33', '0x11', [[24]])
    """
    n, k = layer.codes.shape
    kb = layer.zero.shape[1]
    c = np.repeat(layer.zero, layer.block, axis=1)  # padding = zero point: dequantizes to 0
    c[:, :k] = layer.codes
    c = c.reshape(n, kb, layer.block)
    if layer.bits == 8:
        return c, layer.zero.copy()
    return _pack4(c), _pack4(layer.zero)


def pack_gather(layer: NbitsLayer) -> tuple[np.ndarray, np.ndarray]:
    """GatherBlockQuantized data (``uint8 [V, D·bits/8]``) and zero points of a table."""
    if layer.bits == 8:
        return layer.codes.copy(), layer.zero.copy()
    if layer.codes.shape[1] % 2:
        raise ModelError(f"embedding {layer.name!r} has an odd width; 4-bit "
                         "GatherBlockQuantized needs an even one (use embedding_bits=8)")
    return _pack4(layer.codes), _pack4(layer.zero)


def nbits_layers(model: nn.Module) -> dict[str, NbitsLayer]:
    """Every quantized Linear (and the quantized token-embedding table) of ``model`` in
    MatMulNBits form, by module name. Raises ``ModelError`` naming a layer it cannot take.
    Quantized convolutions are not among them (they stay float in the graph)."""
    from ..targets import token_embedding

    table = token_embedding(model)
    out = {}
    for name, mod in model.named_modules():
        if _fixed_quant(mod) is None:
            continue
        if isinstance(mod, nn.Linear) or mod is table:
            out[name] = plan_layer(name, mod)
    return out

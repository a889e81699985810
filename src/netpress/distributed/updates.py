"""Compressed model updates for federated rounds: top-k with error feedback, then uniform
quantization of the kept values to 8 or 4 bits. Pure numpy/torch maths, tested alone.

An update Δ (client weights − global weights) plus the client's residual is cut to its
``ratio`` largest entries per tensor; their values are quantized symmetrically with one
fp32 scale per tensor (4-bit codes packed two per byte); what was not sent — dropped
entries and rounding error — becomes the next round's residual. The message holds numpy
arrays only: the positions as ``<name>.idx`` (int32) or, when smaller, ``<name>.mask`` (a
bitmap, one bit per entry: above 1/32 of the entries), ``<name>.q`` (uint8 codes) and
``<name>.scale`` (float32); a dense fp32 update is ``<name>.dense``.

Example:
    >>> u = {"w": torch.tensor([0.5, -2.0, 0.0, 2.0])}
    >>> arrays, res = compress_update(u, {}, ratio=0.5, bits=8)
    >>> decode_update(arrays, {"w": (4,)})["w"].tolist(), res["w"].tolist()
    ([0.0, -2.0, 0.0, 2.0], [0.5, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

import math

import numpy as np
import torch


def quantize(values: torch.Tensor, bits: int) -> tuple[np.ndarray, np.float32]:
    """Symmetric uniform codes of ``values`` (offset to unsigned) and the scale.

    Example:
        >>> q, s = quantize(torch.tensor([1.0, -1.0, 0.0]), 4)
        >>> q.nbytes, dequantize(q, s, 4, 3).tolist()
        (2, [1.0, -1.0, 0.0])
    """
    levels = 2 ** (bits - 1) - 1
    m = float(values.abs().max()) if values.numel() else 0.0
    scale = np.float32(m / levels if m > 0 else 1.0)
    codes = (torch.round(values / float(scale)).clamp(-levels, levels) + levels).to(torch.uint8)
    q = codes.numpy()
    if bits == 4:
        if len(q) % 2:
            q = np.append(q, np.uint8(levels))
        q = (q[0::2] | (q[1::2] << 4)).astype(np.uint8)
    return q, scale


def dequantize(q: np.ndarray, scale: np.float32, bits: int, n: int) -> torch.Tensor:
    """The values ``quantize`` coded (``n`` of them)."""
    levels = 2 ** (bits - 1) - 1
    if bits == 4:
        q = np.stack([q & 0x0F, q >> 4], axis=1).reshape(-1)[:n]
    return (torch.from_numpy(q.astype(np.float32)) - levels) * float(scale)


def compress_update(update: dict[str, torch.Tensor], residual: dict[str, torch.Tensor],
                    ratio: float = 1.0, bits: int = 32) -> tuple[dict[str, np.ndarray],
                                                                 dict[str, torch.Tensor]]:
    """The arrays to send for ``update`` (with error feedback from ``residual``) and the
    new residual. ``ratio`` 1 and ``bits`` 32: the dense fp32 update, no residual."""
    arrays: dict[str, np.ndarray] = {}
    new_res: dict[str, torch.Tensor] = {}
    for name, u in update.items():
        full = u.flatten().float() + residual.get(name, torch.zeros(u.numel()))
        if ratio >= 1 and bits >= 32:
            arrays[f"{name}.dense"] = full.numpy().astype(np.float32)
            continue
        k = max(1, math.ceil(ratio * full.numel()))
        idx = full.abs().topk(k, sorted=False).indices.sort().values
        vals = full[idx]
        if bits >= 32:
            sent = vals
            arrays[f"{name}.val"] = vals.numpy().astype(np.float32)
        else:
            q, scale = quantize(vals, bits)
            arrays[f"{name}.q"], arrays[f"{name}.scale"] = q, np.array([scale], np.float32)
            sent = dequantize(q, scale, bits, k)
        if 4 * k > (full.numel() + 7) // 8:  # a bitmap of positions is smaller
            bitmap = np.zeros(full.numel(), dtype=bool)
            bitmap[idx.numpy()] = True
            arrays[f"{name}.mask"] = np.packbits(bitmap)
        else:
            arrays[f"{name}.idx"] = idx.numpy().astype(np.int32)
        rest = full.clone()
        rest[idx] -= sent
        new_res[name] = rest
    if bits < 32:
        arrays["_bits"] = np.array([bits], np.int32)
    return arrays, new_res


def decode_update(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
                  ) -> dict[str, torch.Tensor]:
    """The dense update the arrays of ``compress_update`` stand for."""
    bits = int(arrays["_bits"][0]) if "_bits" in arrays else 32
    out = {}
    for name, shape in shapes.items():
        n = math.prod(shape)
        if f"{name}.dense" in arrays:
            out[name] = torch.from_numpy(np.array(arrays[f"{name}.dense"])).view(shape)
            continue
        if f"{name}.mask" in arrays:
            bitmap = np.unpackbits(np.array(arrays[f"{name}.mask"]), count=n).astype(bool)
            idx = torch.from_numpy(np.nonzero(bitmap)[0].astype(np.int64))
        else:
            idx = torch.from_numpy(np.array(arrays[f"{name}.idx"]).astype(np.int64))
        if f"{name}.val" in arrays:
            vals = torch.from_numpy(np.array(arrays[f"{name}.val"]))
        else:
            vals = dequantize(np.array(arrays[f"{name}.q"]), np.float32(arrays[f"{name}.scale"][0]),
                              bits, len(idx))
        dense = torch.zeros(n)
        dense[idx] = vals
        out[name] = dense.view(shape)
    return out


def payload_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes of the arrays' data (what the update costs on the wire, framing aside)."""
    return int(sum(a.nbytes for a in arrays.values()))


def dirichlet_split(labels: torch.Tensor, clients: int, alpha: float, seed: int = 0
                    ) -> list[torch.Tensor]:
    """Non-identical shards: each class's examples divided among ``clients`` in proportions
    drawn from Dirichlet(``alpha``) (small alpha: each client sees few classes).

    Example:
        >>> shards = dirichlet_split(torch.arange(100) % 10, 4, alpha=0.5)
        >>> sum(len(s) for s in shards)
        100
    """
    rng = np.random.default_rng(seed)
    y = labels.numpy()
    parts: list[list[int]] = [[] for _ in range(clients)]
    for c in np.unique(y):
        idx = rng.permutation(np.nonzero(y == c)[0])
        cuts = (np.cumsum(rng.dirichlet([alpha] * clients)) * len(idx)).astype(int)[:-1]
        for i, piece in enumerate(np.split(idx, cuts)):
            parts[i].extend(piece.tolist())
    return [torch.tensor(sorted(p), dtype=torch.long) for p in parts]

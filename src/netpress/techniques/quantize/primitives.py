"""Quantization maths on tensors: ranges, scales, quantize/dequantize, fake-quant with a
straight-through estimator (STE), binary and ternary codes.

Every function takes and returns tensors; no module surgery happens here, so each is tested
alone. Granularity is ``tensor`` (one scale), ``channel`` (one per output channel, dim 0) or
``group`` (one per ``group_size`` consecutive inputs of each output channel, the weight seen
as a 2-D ``[out, in·kh·kw]`` matrix; a last shorter group is allowed).

We write these ourselves rather than call ``torch.fake_quantize_*`` because those ops only
cover per-tensor/per-channel int8-style ranges, not groups, 2–7 bits with gradients to the
scale (LSQ), binary or ternary. The int8 export path still uses the torch ops (see
``modules.py``) because they export to ONNX QuantizeLinear/DequantizeLinear.
"""

from __future__ import annotations

from typing import Literal

import torch

Granularity = Literal["tensor", "channel", "group"]


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """Integer range of a ``bits``-bit code: signed for symmetric, unsigned for asymmetric.

    Example:
        >>> qrange(8, True), qrange(8, False), qrange(4, True)
        ((-128, 127), (0, 255), (-8, 7))
    """
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")
    if symmetric:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass.

    Example:
        >>> x = torch.tensor([0.4, 1.6], requires_grad=True)
        >>> round_ste(x).sum().backward(); x.grad.tolist()
        [1.0, 1.0]
    """
    return torch.round(x).detach() + (x - x.detach())  # exact values, identity gradient


def as_matrix(w: torch.Tensor) -> torch.Tensor:
    """View a weight as ``[out, in·kh·kw]`` (a 1-D tensor as ``[1, n]``)."""
    return w.reshape(1, -1) if w.dim() == 1 else w.reshape(w.shape[0], -1)


def group_index(n_in: int, group_size: int, device=None) -> torch.Tensor:
    """Group id of each input column: ``arange(n_in) // group_size``."""
    return torch.arange(n_in, device=device) // group_size


def weight_min_max(
    w: torch.Tensor, granularity: Granularity, group_size: int = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max of ``w`` per tensor ``[1, 1]``, per channel ``[out, 1]`` or per group
    ``[out, n_groups]``, computed on the 2-D view.

    Example:
        >>> lo, hi = weight_min_max(torch.arange(8.).reshape(2, 4), "group", 2)
        >>> hi.tolist()
        [[1.0, 3.0], [5.0, 7.0]]
    """
    m = as_matrix(w)
    if granularity == "tensor":
        return m.min().reshape(1, 1), m.max().reshape(1, 1)
    if granularity == "channel":
        return m.min(1, keepdim=True).values, m.max(1, keepdim=True).values
    if granularity != "group":
        raise ValueError(f"unknown granularity {granularity!r}")
    out, n_in = m.shape
    idx = group_index(n_in, group_size, m.device).expand(out, n_in)
    ng = -(-n_in // group_size)
    lo = torch.zeros(out, ng, dtype=m.dtype, device=m.device).scatter_reduce(
        1, idx, m, "amin", include_self=False)
    hi = torch.zeros(out, ng, dtype=m.dtype, device=m.device).scatter_reduce(
        1, idx, m, "amax", include_self=False)
    return lo, hi


def expand_to(t: torch.Tensor, w: torch.Tensor, group_size: int) -> torch.Tensor:
    """Broadcast per-tensor/channel/group params ``t`` (``[1|out, 1|n_groups]``) to the 2-D
    view of ``w``."""
    m = as_matrix(w)
    if t.shape[1] == 1:
        return t.expand(m.shape[0], 1) if t.shape[0] == 1 else t
    # repeat_interleave backpropagates as a sum per group: far faster than a gather
    return torch.repeat_interleave(t, group_size, dim=1)[:, : m.shape[1]]


def scale_zero_point(
    lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and integer zero point mapping ``[lo, hi]`` onto the ``bits``-bit grid.

    Symmetric: ``scale = max(|lo|, |hi|) / qmax``, zero point 0 (code range signed).
    Asymmetric: the range is widened to include 0 so 0 is exactly representable.

    Example:
        >>> s, z = scale_zero_point(torch.tensor(-1.), torch.tensor(1.), 8, True)
        >>> round(float(s) * 127, 6), int(z)
        (1.0, 0)
    """
    qmin, qmax = qrange(bits, symmetric)
    if symmetric:
        amax = torch.maximum(lo.abs(), hi.abs())
        scale = torch.clamp(amax / qmax, min=eps)
        return scale, torch.zeros_like(scale)
    lo = torch.clamp(lo, max=0.0)
    hi = torch.clamp(hi, min=0.0)
    scale = torch.clamp((hi - lo) / (qmax - qmin), min=eps)
    zp = torch.clamp(torch.round(qmin - lo / scale), qmin, qmax)
    return scale, zp


def quantize(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int, symmetric: bool
) -> torch.Tensor:
    """Integer codes ``clamp(round(x / scale) + zp)`` as int32 (broadcasting params).

    Example:
        >>> quantize(torch.tensor([0.26, -5.0]), torch.tensor(0.1), torch.tensor(0.), 8, True)
        tensor([  3, -50], dtype=torch.int32)
    """
    qmin, qmax = qrange(bits, symmetric)
    return torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """Real values ``(q - zp) · scale``."""
    return (q.to(scale.dtype) - zero_point) * scale


def fake_quant(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int, symmetric: bool
) -> torch.Tensor:
    """Quantize then dequantize, with a straight-through gradient inside the range (and
    zero gradient where clipped), as in QAT.

    Example:
        >>> fake_quant(torch.tensor([0.26]), torch.tensor(0.1), torch.tensor(0.), 8, True)
        tensor([0.3000])
    """
    qmin, qmax = qrange(bits, symmetric)
    q = torch.clamp(round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def fake_quant_weight(
    w: torch.Tensor,
    bits: int,
    symmetric: bool = True,
    granularity: Granularity = "channel",
    group_size: int = 128,
) -> torch.Tensor:
    """Fake-quantize a weight with min-max ranges at the given granularity (same shape out).

    Example:
        >>> w = torch.randn(4, 16)
        >>> err = (fake_quant_weight(w, 8) - w).abs().max()
        >>> bool(err <= w.abs().max() / 127 / 2 + 1e-6)
        True
    """
    lo, hi = weight_min_max(w, granularity, group_size)
    scale, zp = scale_zero_point(lo, hi, bits, symmetric)
    m = as_matrix(w)
    s, z = expand_to(scale, w, group_size), expand_to(zp, w, group_size)
    return fake_quant(m, s, z, bits, symmetric).reshape(w.shape)


def binarize(w: torch.Tensor) -> torch.Tensor:
    """Binary weights: ``sign(w) · mean|w|`` per output channel (XNOR-Net), STE gradient.

    Example:
        >>> binarize(torch.tensor([[0.5, -1.5]])).tolist()
        [[1.0, -1.0]]
    """
    m = as_matrix(w)
    alpha = m.abs().mean(1, keepdim=True)
    sign = torch.where(m >= 0, 1.0, -1.0).to(m.dtype)
    q = (sign * alpha).detach() + (m - m.detach())
    return q.reshape(w.shape)


def ternarize(w: torch.Tensor, threshold: float = 0.7) -> torch.Tensor:
    """Ternary weights ``{-α, 0, +α}`` per output channel (TWN: Δ = 0.7·mean|w|, α the mean
    magnitude above Δ), STE gradient.

    Example:
        >>> ternarize(torch.tensor([[1.0, -1.0, 0.1, 0.0]])).tolist()
        [[1.0, -1.0, 0.0, 0.0]]
    """
    m = as_matrix(w)
    delta = threshold * m.abs().mean(1, keepdim=True)
    keep = (m.abs() > delta).to(m.dtype)
    alpha = (m.abs() * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp(min=1)
    q = (alpha * torch.sign(m) * keep).detach() + (m - m.detach())
    return q.reshape(w.shape)


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB: ``10·log10(‖ref‖² / ‖ref − approx‖²)``.

    Example:
        >>> round(sqnr_db(torch.ones(4), torch.full((4,), 1.1)), 2)
        20.0
    """
    noise = float((reference.double() - approx.double()).pow(2).sum())
    signal = float(reference.double().pow(2).sum())
    if noise == 0.0:
        return float("inf")
    return 10.0 * torch.log10(torch.tensor(signal / noise)).item()

"""Weight quantization maths for one layer: round-to-nearest (RTN) and GPTQ.

GPTQ (Frantar et al., 2023) quantizes the columns of a weight ``W [out, in]`` one at a
time and spreads each column's rounding error over the columns not yet quantized, using
the inverse Hessian ``H = 2·XᵀX`` of the layer's calibration inputs, so the layer's
*output* error ``‖WX − QX‖`` is what is minimised, not the weight error. It is the
reference algorithm (lazy block updates, Cholesky of H⁻¹, group scales fixed when a group
starts); we write it here because no installed library offers it for arbitrary
``nn.Module``s without a GPU.

Scales are rounded to float16 when chosen, so the packed file (float16 scales) rebuilds
exactly the weights the in-memory model uses.
"""

from __future__ import annotations

import torch

from .primitives import qrange, scale_zero_point, weight_min_max

CLIP_FACTORS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)  # range shrinks tried by ``clip``
CLIP_NORM = 2.4  # the error norm the shrink minimises (favours the many small weights)


def _grid(lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool):
    scale, zp = scale_zero_point(lo, hi, bits, symmetric)
    # scales travel as float16; a group of zeros (an embedding's padding row) would round
    # to a zero scale, so keep the smallest float16 step instead
    return scale.half().float().clamp_min(2.0 ** -24), zp


def _params(w: torch.Tensor, bits: int, symmetric: bool, group_size: int, clip: bool = False):
    """Scale and zero point per group (per row when ``group_size`` is 0). With ``clip``
    each group's min-max range is shrunk by the factor of ``CLIP_FACTORS`` whose rounding
    error ``Σ|w − q|^2.4`` is least: a few outliers then no longer stretch the grid that
    every other weight of the group is rounded to."""
    gran = "group" if group_size else "channel"
    lo, hi = weight_min_max(w, gran, group_size or 1)
    scale, zp = _grid(lo, hi, bits, symmetric)
    if not clip:
        return scale, zp
    from .primitives import expand_to, group_index

    gs = group_size or w.shape[1]
    idx = group_index(w.shape[1], gs, w.device).expand_as(w)
    best = None
    for f in CLIP_FACTORS:
        s, z = _grid(lo * f, hi * f, bits, symmetric)
        q = _q(w, expand_to(s, w, gs), expand_to(z, w, gs), bits, symmetric)
        err = torch.zeros_like(s).scatter_add_(1, idx, (w - q).abs().pow(CLIP_NORM))
        if best is None:
            best = err
            continue
        better = err < best
        best = torch.where(better, err, best)
        scale, zp = torch.where(better, s, scale), torch.where(better, z, zp)
    return scale, zp


def _q(w: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, bits: int, symmetric: bool):
    qmin, qmax = qrange(bits, symmetric)
    return (torch.clamp(torch.round(w / scale) + zp, qmin, qmax) - zp) * scale


def rtn(
    w: torch.Tensor, bits: int, symmetric: bool = False, group_size: int = 128,
    clip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Round-to-nearest of a 2-D weight with min-max ranges per group (``group_size`` 0:
    per output channel). Returns ``(dequantized weight, scale, zero_point)``, the params
    shaped ``[out, n_groups]``; ``clip`` searches each group's range (see ``_params``).

    Example:
        >>> q, s, z = rtn(torch.randn(4, 256), 4, group_size=128)
        >>> tuple(s.shape), int(torch.unique(q[0, :128]).numel()) <= 16
        ((4, 2), True)
    """
    from .primitives import expand_to

    scale, zp = _params(w, bits, symmetric, group_size, clip)
    s, z = expand_to(scale, w, group_size or 1), expand_to(zp, w, group_size or 1)
    return _q(w, s, z, bits, symmetric), scale, zp


def hessian(x: torch.Tensor) -> torch.Tensor:
    """``2·XᵀX / n`` of inputs ``x [n, in]`` (float64 for a stable Cholesky)."""
    x = x.double()
    return 2.0 * x.T @ x / max(1, x.shape[0])


def gptq(
    w: torch.Tensor,
    h: torch.Tensor,
    bits: int,
    symmetric: bool = False,
    group_size: int = 128,
    damp: float = 0.01,
    block: int = 128,
    act_order: bool = False,
    clip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GPTQ of a 2-D weight ``w [out, in]`` given the Hessian ``h [in, in]``.

    Returns ``(dequantized weight, scale, zero_point)`` like ``rtn``. With ``act_order``
    the columns are quantized in order of decreasing Hessian diagonal (the inputs with the
    most energy first, whose error the rest can still absorb); the groups stay contiguous in
    the original order, their grids fixed from the unquantized weight beforehand ("static
    groups"), so the result packs and loads like any other. ``clip`` chooses each group's
    range by search when its grid is fixed (see ``_params``).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, w = torch.randn(512, 64, generator=g), torch.randn(16, 64, generator=g)
        >>> q, _, _ = gptq(w, hessian(x), 3, group_size=32)
        >>> r, _, _ = rtn(w, 3, group_size=32)
        >>> bool(((q - w) @ x.T).norm() < ((r - w) @ x.T).norm())
        True
    """
    W = w.detach().double().clone()
    out, n = W.shape
    H = h.double().clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(n, dtype=H.dtype)
    perm = torch.argsort(torch.diag(H), descending=True) if act_order else torch.arange(n)
    static = None
    if act_order:
        if group_size:
            static = _params(W.float(), bits, symmetric, group_size, clip)
        W, H = W[:, perm], H[perm][:, perm]
    # H is damped so it is well conditioned; linalg.inv is far faster here than
    # cholesky_inverse on float64 CPU tensors
    Hinv = torch.linalg.cholesky(torch.linalg.inv(H), upper=True)
    if group_size:
        block = group_size * max(1, block // group_size)
        ng = -(-n // group_size)
        scale = torch.zeros(out, ng)
        zp = torch.zeros(out, ng)
    else:
        scale, zp = _params(W.float(), bits, symmetric, 0, clip)
    Q = torch.zeros_like(W)
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if static is not None:
                g = int(perm[col]) // group_size
                s, z = static[0][:, g:g + 1], static[1][:, g:g + 1]
            elif group_size and col % group_size == 0:
                g = col // group_size
                s, z = _params(W1[:, i:i + group_size].float(), bits, symmetric, 0, clip)
                scale[:, g], zp[:, g] = s[:, 0], z[:, 0]
            if group_size and static is None:
                s, z = scale[:, col // group_size:col // group_size + 1], \
                    zp[:, col // group_size:col // group_size + 1]
            elif not group_size:
                s, z = scale, zp
            wcol = W1[:, i:i + 1]
            q = _q(wcol.float(), s, z, bits, symmetric).double()
            Q1[:, i:i + 1] = q
            err = (wcol - q) / Hinv1[i, i]
            W1[:, i:] -= err @ Hinv1[i:i + 1, i:]
            E1[:, i:i + 1] = err
        Q[:, i1:i2] = Q1
        W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
    if act_order:
        Q = Q[:, torch.argsort(perm)]
        if static is not None:
            scale, zp = static
    return Q.to(w.dtype), scale, zp

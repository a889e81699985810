"""Pure tensor maths of pruning: which weights to zero. No modules, no training.

Every function takes weight tensors and returns boolean keep-masks (``True`` = kept)
of the same shape, so it can be tested alone and reused by any surgery. Counts are
exact: ``magnitude_mask(w, 0.9)`` zeroes exactly ``round(0.9 * w.numel())`` entries,
breaking ties between equal magnitudes by position (a stable sort), so the same
weights always give the same mask.
"""

from __future__ import annotations

import torch

from ...errors import ConfigError


def num_to_prune(numel: int, sparsity: float) -> int:
    """How many of ``numel`` weights a ``sparsity`` fraction removes (rounded to nearest).

    Example:
        >>> num_to_prune(1000, 0.92)
        920
    """
    return int(round(sparsity * numel))


def _mask_from_scores(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask that drops the ``k`` smallest scores (stable: earlier index drops first)."""
    flat = scores.detach().reshape(-1)
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if k > 0:
        order = torch.sort(flat, stable=True).indices
        keep[order[:k]] = False
    return keep.reshape(scores.shape)


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask zeroing the ``sparsity`` fraction of ``w`` with the smallest |w|.

    Example:
        >>> magnitude_mask(torch.tensor([0.1, -3.0, 0.5, 2.0]), 0.5).tolist()
        [False, True, False, True]
    """
    return _mask_from_scores(w.abs(), num_to_prune(w.numel(), sparsity))


def global_magnitude_masks(
    weights: dict[str, torch.Tensor], sparsity: float
) -> dict[str, torch.Tensor]:
    """Keep-masks for several tensors ranked together: exactly ``sparsity`` of all their
    entries are zeroed, the smallest |w| across every tensor first.

    Example:
        >>> ms = global_magnitude_masks({"a": torch.tensor([1.0, 2.0]),
        ...                              "b": torch.tensor([0.1, 0.2])}, 0.5)
        >>> ms["a"].tolist(), ms["b"].tolist()
        ([True, True], [False, False])
    """
    if not weights:
        return {}
    names = list(weights)
    flat = torch.cat([weights[n].detach().abs().reshape(-1) for n in names])
    keep = _mask_from_scores(flat, num_to_prune(flat.numel(), sparsity))
    out, start = {}, 0
    for n in names:
        size = weights[n].numel()
        out[n] = keep[start:start + size].reshape(weights[n].shape)
        start += size
    return out


def threshold_mask(w: torch.Tensor, quality: float, std: float | None = None) -> torch.Tensor:
    """Han et al.'s rule: keep |w| > ``quality`` × std of the layer's weights.

    ``std`` defaults to the standard deviation of ``w`` itself.

    Example:
        >>> threshold_mask(torch.tensor([0.1, -3.0, 0.5, 2.0]), 0.5, std=1.0).tolist()
        [False, True, False, True]
    """
    s = float(w.detach().std()) if std is None else std
    return w.detach().abs() > quality * s


def _input_last(w: torch.Tensor) -> torch.Tensor:
    """View a Linear (out, in) or Conv (out, in, *k) weight with the input channel last."""
    if w.dim() == 2:
        return w
    return w.movedim(1, -1)


def nm_mask(w: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """N:M keep-mask along the input dimension: in every run of ``m`` consecutive input
    channels (per output and kernel position) the ``n`` largest |w| are kept.

    Example:
        >>> nm_mask(torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 2, 4).tolist()
        [[True, False, True, False]]
    """
    if not 0 < n <= m:
        raise ConfigError(f"N:M needs 0 < N <= M, got {n}:{m}")
    if w.dim() < 2:
        raise ConfigError("N:M sparsity applies to weights with an input dimension (2-D or more)")
    cin = w.shape[1]
    if cin % m:
        raise ConfigError(f"input dimension {cin} is not a multiple of M={m}")
    v = _input_last(w.detach().abs())
    groups = v.reshape(-1, m)
    keep_idx = torch.sort(groups, dim=1, descending=True, stable=True).indices[:, :n]
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, keep_idx, True)
    keep = keep.reshape(v.shape)
    return keep if w.dim() == 2 else keep.movedim(-1, 1)


def nm_violations(w: torch.Tensor, n: int, m: int) -> int:
    """Number of M-groups along the input dimension holding more than ``n`` nonzeros
    (0 means ``w`` obeys N:M).

    Example:
        >>> nm_violations(torch.tensor([[1.0, 0.0, 2.0, 0.0, 1.0, 1.0, 1.0, 0.0]]), 2, 4)
        1
    """
    if w.dim() < 2 or w.shape[1] % m:
        raise ConfigError(f"weight of shape {tuple(w.shape)} cannot be grouped by M={m}")
    groups = (_input_last(w.detach()) != 0).reshape(-1, m)
    return int((groups.sum(1) > n).sum())


def agp_sparsity(step: int, final: float, begin: int, end: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's gradual schedule: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(t1 − t0))³,
    clamped to ``initial`` before ``begin`` and ``final`` after ``end``.

    Example:
        >>> [round(agp_sparsity(t, 0.9, 0, 100), 3) for t in (0, 50, 100, 200)]
        [0.0, 0.787, 0.9, 0.9]
    """
    if step <= begin:
        return initial
    if step >= end or end <= begin:
        return final
    frac = (step - begin) / (end - begin)
    return final + (initial - final) * (1.0 - frac) ** 3


def sparsity_of(t: torch.Tensor) -> float:
    """Fraction of exact zeros in ``t``.

    Example:
        >>> sparsity_of(torch.tensor([0.0, 1.0, 0.0, 2.0]))
        0.5
    """
    return 1.0 - int(torch.count_nonzero(t)) / max(1, t.numel())

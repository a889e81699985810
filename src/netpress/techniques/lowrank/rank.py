"""Rank selection: by kept energy, and by a parameter budget over many layers.

Energy of a rank-r truncation is ``Σ_{i<r} s_i² / Σ s_i²`` of the singular values s.
For a budget we search one energy threshold shared by every layer (bisection), so
each layer keeps the same fraction of its energy and the total fits the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def kept_energy(s: torch.Tensor, rank: int) -> float:
    """Fraction of ``Σ s²`` kept by the first ``rank`` singular values.

    Example:
        >>> kept_energy(torch.tensor([3.0, 1.0]), 1)
        0.9
    """
    e = s.double().pow(2)
    total = float(e.sum())
    return 1.0 if total == 0 else float(e[:rank].sum()) / total


def rank_for_energy(s: torch.Tensor, energy: float) -> int:
    """The smallest rank whose kept energy reaches ``energy`` (0 < energy ≤ 1).

    Example:
        >>> rank_for_energy(torch.tensor([3.0, 2.0, 1.0]), 0.9)  # 9/14, 13/14, 14/14
        2
    """
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    e = s.double().pow(2)
    total = float(e.sum())
    if total == 0.0:
        return 1
    frac = torch.cumsum(e, 0) / total
    # a relative tolerance so that energy=1.0 reaches full rank despite rounding
    hit = torch.nonzero(frac >= energy - 1e-12)
    return int(hit[0]) + 1 if len(hit) else len(s)


def energy_for_budget(
    costs: Sequence[Callable[[float], int]], budget: int, iters: int = 40
) -> float:
    """The largest energy threshold e such that ``Σ cost(e) ≤ budget``.

    Each ``cost(e)`` gives a layer's parameter count when it keeps energy ``e`` (it is
    non-decreasing in e). Returns 0.0 when even the smallest ranks do not fit.

    Example:
        >>> round(energy_for_budget([lambda e: int(100 * e)], 50), 2)  # int(100·0.5099…) = 50
        0.51
    """
    def total(e: float) -> int:
        return sum(c(e) for c in costs)

    if total(1.0) <= budget:
        return 1.0
    lo, hi = 0.0, 1.0
    if total(1e-9) > budget:
        return 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        if total(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return round(lo, 6) if total(round(lo, 6)) <= budget else lo

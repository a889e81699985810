"""Pruning masks held ON the model as ``torch.nn.utils.parametrize`` parametrizations.

While a model is fine-tuned, each pruned weight is computed as ``original * mask``;
the mask is a buffer, so it is saved with the state dict and never trained. The
gradient reaching a masked entry is zero, so pruned weights stay zero however long
the model trains. ``netpress.api.bake`` folds the mask into a plain weight.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...targets import Targets


class PruningMask(nn.Module):
    """Parametrization ``w ↦ w * mask`` with ``mask`` a float buffer of 0s and 1s.

    Example:
        >>> lin = nn.Linear(2, 2)
        >>> _ = parametrize.register_parametrization(lin, "weight", PruningMask(torch.eye(2)))
        >>> int((lin.weight == 0).sum())
        2
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.float32).clone())

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.to(w.dtype)


def mask_of(module: nn.Module, name: str = "weight") -> PruningMask | None:
    """The module's pruning mask on ``name``, if it has one."""
    if not parametrize.is_parametrized(module, name):
        return None
    for p in module.parametrizations[name]:
        if isinstance(p, PruningMask):
            return p
    return None


def set_mask(module: nn.Module, keep: torch.Tensor, name: str = "weight") -> None:
    """Install (or replace) the keep-mask of ``module.<name>``.

    A new mask is ANDed with the old one, so weights once pruned stay pruned.

    Example:
        >>> lin = nn.Linear(3, 1)
        >>> set_mask(lin, torch.tensor([[True, False, True]]))
        >>> int(torch.count_nonzero(lin.weight))
        2
    """
    current = mask_of(module, name)
    if current is None:
        parametrize.register_parametrization(module, name, PruningMask(keep))
        return
    with torch.no_grad():
        current.mask.mul_(keep.to(current.mask.dtype))


def masked_weights(model: nn.Module, targets: Targets) -> dict[str, nn.Module]:
    """The targeted modules that carry a weight, by name, in model order."""
    return {n: m for n, m in targets.select(model) if isinstance(getattr(m, "weight", None),
                                                                 torch.Tensor)}


def weight_sparsity(model: nn.Module, targets: Targets) -> dict[str, float]:
    """Fraction of zeros in each targeted weight, as the model computes with it.

    Example:
        >>> weight_sparsity(nn.Sequential(nn.Linear(2, 2)), Targets())
        {'0': 0.0}
    """
    out = {}
    for n, m in masked_weights(model, targets).items():
        w = m.weight.detach()
        out[n] = 1.0 - int(torch.count_nonzero(w)) / w.numel()
    return out


def overall_sparsity(model: nn.Module, targets: Targets) -> float:
    """Fraction of zeros over all targeted weights together."""
    zeros = total = 0
    for m in masked_weights(model, targets).values():
        w = m.weight.detach()
        zeros += w.numel() - int(torch.count_nonzero(w))
        total += w.numel()
    return zeros / max(1, total)

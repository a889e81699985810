"""BatchNorm folding: merge an eval-mode BatchNorm into the conv/linear that feeds it.

``y = γ (W x + b − μ) / √(σ² + ε) + β`` equals a conv/linear with weight
``W · γ/√(σ²+ε)`` (per output channel) and bias ``(b − μ) · γ/√(σ²+ε) + β``. Folding
before quantization lets the folded weight be quantized once, as int8 runtimes do.

A pair is folded when a BatchNorm directly follows a Conv/Linear inside an
``nn.Sequential`` (the pattern of the zoo and of most CNNs); the BatchNorm becomes
``nn.Identity``.
"""

from __future__ import annotations

import torch
from torch import nn


def fold_bn_params(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm
) -> tuple[torch.Tensor, torch.Tensor]:
    """The folded ``(weight, bias)`` of a conv/linear followed by ``bn`` (pure tensor maths).

    Example:
        >>> bn = nn.BatchNorm1d(2).eval()
        >>> w, b = fold_bn_params(torch.ones(2, 3), None, bn)
        >>> torch.allclose(w, torch.ones(2, 3) / (1 + 1e-5) ** 0.5)
        True
    """
    inv = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
        1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias.detach() if bn.affine else torch.zeros_like(inv)
    b = bias.detach() if bias is not None else torch.zeros_like(bn.running_mean)
    w = weight.detach() * inv.reshape(-1, *([1] * (weight.dim() - 1)))
    return w, (b - bn.running_mean) * inv + shift


def _fold_pair(layer: nn.Module, bn: nn.Module) -> None:
    w, b = fold_bn_params(layer.weight, layer.bias, bn)
    layer.weight = nn.Parameter(w)
    layer.bias = nn.Parameter(b)


def fold_batchnorm(model: nn.Module) -> list[str]:
    """Fold every (Conv/Linear, BatchNorm) pair adjacent in an ``nn.Sequential``, in place.
    Returns the names of the folded BatchNorms.

    Example:
        >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).eval()
        >>> fold_batchnorm(m)
        ['1']
    """
    folded = []
    for pname, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        kids = list(parent.named_children())
        for (_, a), (bname, b) in zip(kids, kids[1:], strict=False):
            if isinstance(a, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) and isinstance(
                    b, nn.modules.batchnorm._BatchNorm) and b.track_running_stats:
                _fold_pair(a, b)
                setattr(parent, bname, nn.Identity())
                folded.append(f"{pname}.{bname}" if pname else bname)
    return folded

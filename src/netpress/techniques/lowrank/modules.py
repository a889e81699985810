"""Factorized layers: real, smaller modules built from plain Linear/Conv2d layers.

Each is an ``nn.Sequential`` subclass, so it runs, counts, saves and exports to ONNX
like any chain of layers; the subclass only names what it is and keeps its ranks.
``from_*`` constructors fill the weights from a decomposition of a dense layer; the
plain constructors build the right shapes with untrained weights (used when a saved
file is reloaded and its tensors are loaded afterwards).
"""

from __future__ import annotations

import torch
from torch import nn

from .svd import svd_factors
from .tucker import cp_factors, tucker2_factors


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _check_conv(conv: nn.Conv2d, what: str) -> None:
    if conv.groups != 1 or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError(f"{what} supports Conv2d with groups=1 and numeric zero padding")


class LowRankLinear(nn.Sequential):
    """``Linear(in → rank, no bias)`` then ``Linear(rank → out)``: W ≈ B·A.

    Example:
        >>> dense = nn.Linear(8, 6)
        >>> lr = LowRankLinear.from_linear(dense, 6)
        >>> x = torch.randn(3, 8)
        >>> torch.allclose(lr(x), dense(x), atol=1e-5)
        True
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__(nn.Linear(in_features, rank, bias=False),
                         nn.Linear(rank, out_features, bias=bias))
        self.rank = rank

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int) -> LowRankLinear:
        """Truncated SVD of ``linear`` at ``rank``."""
        m = cls(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
        a, b = svd_factors(linear.weight, rank)
        with torch.no_grad():
            m[0].weight.copy_(a)
            m[1].weight.copy_(b)
            if linear.bias is not None:
                m[1].bias.copy_(linear.bias)
        return m


class Tucker2Conv(nn.Sequential):
    """1×1 conv (I → R_in), k×k core conv (R_in → R_out), 1×1 conv (R_out → O).

    Example:
        >>> conv = nn.Conv2d(4, 6, 3, padding=1)
        >>> t = Tucker2Conv.from_conv(conv, (6, 4))
        >>> x = torch.randn(2, 4, 5, 5)
        >>> torch.allclose(t(x), conv(x), atol=1e-4)
        True
    """

    def __init__(self, conv: nn.Conv2d, ranks: tuple[int, int]):
        _check_conv(conv, "Tucker-2")
        r_out, r_in = ranks
        super().__init__(
            nn.Conv2d(conv.in_channels, r_in, 1, bias=False),
            nn.Conv2d(r_in, r_out, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                      dilation=conv.dilation, bias=False),
            nn.Conv2d(r_out, conv.out_channels, 1, bias=conv.bias is not None),
        )
        self.ranks = (r_out, r_in)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, ranks: tuple[int, int]) -> Tucker2Conv:
        """Tucker-2 (HOOI) of ``conv``'s kernel at ``ranks = (R_out, R_in)``."""
        m = cls(conv, ranks)
        first, core, last = tucker2_factors(conv.weight, ranks)
        with torch.no_grad():
            m[0].weight.copy_(first)
            m[1].weight.copy_(core)
            m[2].weight.copy_(last)
            if conv.bias is not None:
                m[2].bias.copy_(conv.bias)
        return m


class CPConv(nn.Sequential):
    """1×1 conv (I → R), depthwise kh×1, depthwise 1×kw, 1×1 conv (R → O).

    Example:
        >>> conv = nn.Conv2d(3, 4, 3, padding=1)
        >>> type(CPConv.from_conv(conv, 6)(torch.randn(1, 3, 5, 5))).__name__
        'Tensor'
    """

    def __init__(self, conv: nn.Conv2d, rank: int):
        _check_conv(conv, "CP")
        (kh, kw), (sh, sw) = _pair(conv.kernel_size), _pair(conv.stride)
        (ph, pw), (dh, dw) = _pair(conv.padding), _pair(conv.dilation)
        super().__init__(
            nn.Conv2d(conv.in_channels, rank, 1, bias=False),
            nn.Conv2d(rank, rank, (kh, 1), stride=(sh, 1), padding=(ph, 0), dilation=(dh, 1),
                      groups=rank, bias=False),
            nn.Conv2d(rank, rank, (1, kw), stride=(1, sw), padding=(0, pw), dilation=(1, dw),
                      groups=rank, bias=False),
            nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None),
        )
        self.rank = rank

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, rank: int) -> CPConv:
        """CP (ALS) of ``conv``'s kernel with ``rank`` components."""
        m = cls(conv, rank)
        weights = cp_factors(conv.weight, rank)
        with torch.no_grad():
            for layer, w in zip(m, weights, strict=True):
                layer.weight.copy_(w)
            if conv.bias is not None:
                m[3].bias.copy_(conv.bias)
        return m

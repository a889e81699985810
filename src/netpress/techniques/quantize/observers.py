"""Calibration observers: watch activations, then choose the range ``[lo, hi]`` to quantize.

Methods:

- ``minmax``: the extreme values seen.
- ``ema``: moving average of each batch's min and max (momentum 0.9 per batch).
- ``percentile``: the ``p`` and ``1 − p`` quantiles (default 99.99 %) of the histogram.
- ``mse``: the clipping range that minimises the expected squared quantization error
  over the histogram (a grid of 100 shrink factors of the min-max range).
- ``kl``: entropy calibration — the clipping range whose quantized distribution has the
  least KL divergence from the observed one: TensorRT's threshold on ``|x|`` for a
  symmetric grid, a search over both edges of the signed histogram for an asymmetric one.

We write these ourselves (rather than use ONNX Runtime's calibrators or
``torch.ao.quantization`` observers) because their ranges must feed our own fake-quant
modules, QDQ export, diagnosis and QAT start, from one place and on plain tensors. The
range maths are plain functions on a histogram; ``Observer`` keeps the running statistics
as buffers on the model.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .primitives import qrange, scale_zero_point

Method = Literal["minmax", "ema", "percentile", "mse", "kl"]
METHODS: tuple[str, ...] = ("minmax", "ema", "percentile", "mse", "kl")


def rebin(hist: torch.Tensor, lo: float, hi: float, new_lo: float, new_hi: float) -> torch.Tensor:
    """Move a histogram over ``[lo, hi]`` onto the same number of bins over the wider
    ``[new_lo, new_hi]`` (each old bin's count goes to the bin holding its centre)."""
    n = hist.numel()
    if hi <= lo:
        centres = torch.full((n,), lo, dtype=torch.float64)
    else:
        centres = lo + (torch.arange(n, dtype=torch.float64) + 0.5) * (hi - lo) / n
    width = (new_hi - new_lo) / n
    idx = ((centres - new_lo) / width).floor().clamp(0, n - 1).long()
    return torch.zeros(n, dtype=torch.float64).index_add_(0, idx, hist)


def percentile_range(
    hist: torch.Tensor, lo: float, hi: float, p: float = 0.9999
) -> tuple[float, float]:
    """The ``1 − p`` and ``p`` quantiles of a histogram over ``[lo, hi]``.

    Example:
        >>> h = torch.ones(100, dtype=torch.float64)
        >>> [round(v, 2) for v in percentile_range(h, 0.0, 1.0, 0.955)]
        [0.04, 0.96]
    """
    cdf = torch.cumsum(hist, 0) / hist.sum()
    width = (hi - lo) / hist.numel()
    i_lo = int(torch.searchsorted(cdf, torch.tensor(1 - p, dtype=torch.float64)))
    i_hi = int(torch.searchsorted(cdf, torch.tensor(p, dtype=torch.float64)))
    return lo + i_lo * width, lo + (i_hi + 1) * width


def mse_range(
    hist: torch.Tensor, lo: float, hi: float, bits: int, symmetric: bool, steps: int = 100
) -> tuple[float, float]:
    """The shrunk range ``[a·lo, a·hi]`` (a in (0, 1]) with the least expected squared
    quantization error of the histogram's bin centres.

    Example:
        >>> x = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
        >>> h = torch.histc(x.double(), 2048, float(x.min()), float(x.max()))
        >>> lo, hi = mse_range(h, float(x.min()), float(x.max()), 4, True)
        >>> hi < float(x.max())
        True
    """
    n = hist.numel()
    centres = lo + (torch.arange(n, dtype=torch.float64) + 0.5) * (hi - lo) / n
    a = torch.linspace(1.0 / steps, 1.0, steps, dtype=torch.float64).unsqueeze(1)
    scale, zp = scale_zero_point(a * lo, a * hi, bits, symmetric)
    qmin, qmax = qrange(bits, symmetric)
    q = torch.clamp(torch.round(centres / scale) + zp, qmin, qmax)
    err = (((q - zp) * scale - centres) ** 2 * hist).sum(1)
    best = float(a[int(torch.argmin(err))])
    return best * lo, best * hi


def _kl(p: torch.Tensor, q: torch.Tensor) -> float:
    p = p / p.sum()
    q = q / q.sum()
    mask = p > 0
    return float((p[mask] * torch.log(p[mask] / q[mask].clamp(min=1e-12))).sum())


def _quantized_like(p: torch.Tensor, levels: int) -> torch.Tensor:
    """``p`` merged into ``levels`` equal groups of bins, each group's mass spread evenly
    over its non-empty bins (TensorRT's expansion)."""
    i = p.numel()
    nz = (p > 0).double()
    gid = torch.arange(i) * levels // i
    total = torch.zeros(levels, dtype=torch.float64).index_add_(0, gid, p)
    cnt = torch.zeros(levels, dtype=torch.float64).index_add_(0, gid, nz)
    return nz * (total / cnt.clamp(min=1))[gid]


def kl_threshold(abs_hist: torch.Tensor, amax: float, bits: int = 8, signed: bool = True) -> float:
    """TensorRT entropy calibration on a histogram of ``|x|`` over ``[0, amax]``: the
    threshold whose quantization keeps the distribution closest in KL. A signed grid spends
    ``2^(bits−1)`` levels on each side of zero; an unsigned one (``signed=False``: a
    non-negative tensor, e.g. after ReLU, on an asymmetric grid from 0) has all ``2^bits``
    levels for ``[0, t]``, so the search uses that many.

    Example:
        >>> x = torch.distributions.Laplace(0., 1.).sample((200_000,)).abs()
        >>> h = torch.histc(x.double(), 2048, 0., float(x.max()))
        >>> kl_threshold(h, float(x.max())) < float(x.max())
        True
    """
    n = abs_hist.numel()
    levels = 2 ** (bits - 1) if signed else 2**bits
    best_i, best_kl = n, float("inf")
    for i in range(levels, n + 1, max(1, (n - levels) // 256)):
        p = abs_hist[:i].clone()
        p[-1] += abs_hist[i:].sum()
        kl = _kl(p, _quantized_like(abs_hist[:i], levels))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i * amax / n


def kl_range(hist: torch.Tensor, lo: float, hi: float, bits: int = 8,
             steps: int = 32) -> tuple[float, float]:
    """Entropy calibration for an asymmetric grid: the clipping window ``[a, b]`` (bin
    edges of the signed histogram over ``[lo, hi]``, zero kept inside) whose quantization
    to ``2^bits`` levels, with the clipped mass folded into the edge bins, is closest in
    KL to the observed distribution. A grid of ``steps`` candidates for each edge; a
    non-negative tensor keeps ``a = lo``.

    TensorRT's threshold search folds the histogram to ``|x|`` and quantizes with 128
    levels a side, which is the wrong model for a uint8 grid over a skewed signed range
    (it clipped 4–5 pp of accuracy away on the zoo's pre-ReLU outputs); this searches the
    window the grid really spends its levels on.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.cat([torch.randn(200_000, generator=g) * 0.3 + 2.0,
        ...                torch.tensor([40.0, -3.0])])  # two outliers
        >>> h = torch.histc(x.double(), 2048, float(x.min()), float(x.max()))
        >>> a, b = kl_range(h, float(x.min()), float(x.max()))
        >>> -3.0 <= a < 1.0 and 3.0 < b < 10.0
        True
    """
    n = hist.numel()
    levels = 2**bits
    if hi <= lo or n <= levels:
        return lo, hi
    width = (hi - lo) / n
    if lo >= 0:  # one edge to search: TensorRT's threshold with all 2^bits levels
        return lo, lo + kl_threshold(hist, hi - lo, bits, signed=False)
    zero = min(n, max(0, int(round(-lo / width))))  # the bin edge nearest 0

    def kl_of(a: int, b: int) -> float:
        if b - a < levels or a > zero or b < zero:
            return float("inf")
        p = hist[a:b].clone()
        p[0] += hist[:a].sum()
        p[-1] += hist[b:].sum()
        return _kl(p, _quantized_like(hist[a:b], levels))

    def grid(start: int, stop: int) -> list[int]:
        return sorted({int(v) for v in torch.linspace(start, stop, steps).round()})

    # a coarse grid over both edges, then a finer one around the best pair
    best = min(((a, b) for a in grid(0, zero) for b in grid(zero, n)), key=lambda t: kl_of(*t))
    da, db = max(1, zero // steps), max(1, (n - zero) // steps)
    cands = [(a, b) for a in grid(max(0, best[0] - da), min(zero, best[0] + da))
             for b in grid(max(zero, best[1] - db), min(n, best[1] + db))]
    best = min(cands + [best], key=lambda t: kl_of(*t))
    return lo + best[0] * width, lo + best[1] * width


class Observer(nn.Module):
    """Running activation statistics as buffers: min, max, their moving averages and a
    2048-bin histogram that widens as new extremes arrive.

    Example:
        >>> ob = Observer()
        >>> ob.update(torch.linspace(-1, 1, 1001))
        >>> [round(v, 3) for v in ob.range("minmax", 8, False)]
        [-1.0, 1.0]
    """

    def __init__(self, bins: int = 2048, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))
        self.register_buffer("ema_min", torch.tensor(0.0))
        self.register_buffer("ema_max", torch.tensor(0.0))
        self.register_buffer("batches", torch.tensor(0))
        # the histograms hold the nonzero values; exact zeros are counted apart, because
        # rebinning moves a bin's mass and the spike of a ReLU's zeros must stay at 0
        self.register_buffer("hist", torch.zeros(bins, dtype=torch.float64))
        self.register_buffer("abs_hist", torch.zeros(bins, dtype=torch.float64))
        self.register_buffer("abs_max", torch.tensor(0.0))
        self.register_buffer("zeros", torch.tensor(0.0, dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # state saved before exact zeros were counted apart: they are in the histograms
        state_dict.setdefault(prefix + "zeros", torch.tensor(0.0, dtype=torch.float64))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def full_hist(self) -> torch.Tensor:
        """The histogram over ``[min, max]`` with the exact zeros put back in 0's bin."""
        lo, hi = float(self.min_val), float(self.max_val)
        h = self.hist.clone()
        if float(self.zeros) and lo <= 0.0 <= hi:
            n = h.numel()
            h[min(n - 1, int((0.0 - lo) / max(hi - lo, 1e-30) * n))] += self.zeros
        return h

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Add one batch of values."""
        x = x.detach().double().flatten()
        bmin, bmax = float(x.min()), float(x.max())
        old_lo, old_hi = float(self.min_val), float(self.max_val)
        if int(self.batches) == 0:
            self.ema_min.fill_(bmin)
            self.ema_max.fill_(bmax)
        else:
            m = self.momentum
            self.ema_min.mul_(m).add_((1 - m) * bmin)
            self.ema_max.mul_(m).add_((1 - m) * bmax)
        lo, hi = min(bmin, old_lo), max(bmax, old_hi)
        if hi <= lo:
            hi = lo + 1e-8
        if int(self.batches) > 0 and (lo < old_lo or hi > old_hi):
            self.hist.copy_(rebin(self.hist, old_lo, old_hi, lo, hi))
        self.min_val.fill_(lo)
        self.max_val.fill_(hi)
        nonzero = x[x != 0]
        self.zeros.add_(float(x.numel() - nonzero.numel()))
        self.hist.add_(torch.histc(nonzero, self.hist.numel(), lo, hi))
        amax_old, amax = float(self.abs_max), max(float(self.abs_max), abs(lo), abs(hi))
        if int(self.batches) > 0 and amax > amax_old:
            self.abs_hist.copy_(rebin(self.abs_hist, 0.0, amax_old, 0.0, amax))
        self.abs_max.fill_(amax)
        self.abs_hist.add_(torch.histc(nonzero.abs(), self.abs_hist.numel(), 0.0, amax))
        self.batches.add_(1)

    def range(self, method: Method, bits: int, symmetric: bool,
              percentile: float = 0.9999) -> tuple[float, float]:
        """The ``(lo, hi)`` range chosen by ``method`` from the statistics so far."""
        if int(self.batches) == 0:
            raise RuntimeError("observer saw no data; run calibration batches first")
        lo, hi = float(self.min_val), float(self.max_val)
        if method == "minmax":
            return lo, hi
        if method == "ema":
            return float(self.ema_min), float(self.ema_max)
        if method == "percentile":
            return percentile_range(self.full_hist(), lo, hi, percentile)
        if method == "mse":
            return mse_range(self.full_hist(), lo, hi, bits, symmetric)
        if method == "kl":
            # exact zeros (ReLU's) sit on every grid that holds 0 and carry no error; left
            # in, their spike in one bin makes the search favour tiny ranges (after a ReLU
            # it clipped 7–12 % of the values of the zoo's hidden layers). The histograms
            # hold the nonzero values only.
            if float(self.hist.sum()) <= 0:
                return lo, hi
            if not symmetric:  # the uint8 grid spends its 2^bits levels on [lo, hi]
                return kl_range(self.hist, lo, hi, bits)
            t = kl_threshold(self.abs_hist, float(self.abs_max), bits, signed=True)
            return max(lo, -t), min(hi, t)
        raise ValueError(f"unknown observer method {method!r}; choose one of {METHODS}")

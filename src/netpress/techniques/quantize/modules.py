"""The quantizers that live ON a model: a weight parametrization and an activation quantizer.

- ``WeightQuant`` is registered with ``torch.nn.utils.parametrize`` on ``weight``: every
  forward sees the fake-quantized weight, gradients flow to the float weight (STE), and
  ``netpress.api.bake`` folds it into a plain weight. Once ``freeze``-d at 8 bits it uses
  ``torch.fake_quantize_per_channel_affine`` so ONNX export emits QuantizeLinear /
  DequantizeLinear nodes.
- ``ActQuant`` is a child module called by a forward pre-hook (input) or forward hook
  (output) of the layer it guards. It observes in ``observe`` mode and fake-quantizes with
  frozen scale/zero-point buffers in ``quant`` mode (uint8 by default, exported as QDQ).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .observers import Method, Observer
from .primitives import (
    Granularity,
    as_matrix,
    binarize,
    fake_quant_weight,
    qrange,
    scale_zero_point,
    ternarize,
    weight_min_max,
)

Kind = Literal["int", "binary", "ternary"]


class WeightQuant(nn.Module):
    """Fake-quantize a weight: ``bits`` 2–8 (``kind="int"``), or binary/ternary codes.

    Example:
        >>> from torch.nn.utils import parametrize
        >>> lin = nn.Linear(8, 4)
        >>> _ = parametrize.register_parametrization(lin, "weight", WeightQuant(4))
        >>> int(torch.unique(lin.weight[0]).numel()) <= 16
        True
    """

    def __init__(self, bits: int = 8, symmetric: bool = True, granularity: Granularity = "channel",
                 group_size: int = 128, kind: Kind = "int") -> None:
        super().__init__()
        self.bits, self.symmetric, self.kind = bits, symmetric, kind
        self.granularity, self.group_size = granularity, group_size
        self.register_buffer("scale", torch.empty(0))
        self.register_buffer("zero_point", torch.empty(0, dtype=torch.int32))
        self.enabled = True  # False passes the weight through (diagnosis, one layer at a time)

    @torch.no_grad()
    def freeze(self, w: torch.Tensor, reduce_range: bool = False) -> None:
        """Fix per-channel int8 scales from ``w`` (symmetric min-max) for export.

        ``reduce_range`` uses 7 of the 8 bits (codes in −63..63): int8 GEMMs on AVX2
        without VNNI add pairs of u8·s8 products in saturating int16, which overflows
        with full-range weights and makes ONNX Runtime disagree with the simulation.
        """
        if self.kind != "int" or self.bits != 8 or self.granularity == "group":
            return
        gran = "tensor" if self.granularity == "tensor" else "channel"
        lo, hi = weight_min_max(w, gran)
        scale, _ = scale_zero_point(lo, hi, 7 if reduce_range else 8, True)
        self.scale = scale.flatten().expand(w.shape[0]).contiguous().float()
        self.zero_point = torch.zeros(w.shape[0], dtype=torch.int32)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return w
        if self.kind == "binary":
            return binarize(w)
        if self.kind == "ternary":
            return ternarize(w)
        if self.scale.numel():
            return torch.fake_quantize_per_channel_affine(w, self.scale, self.zero_point, 0,
                                                          -128, 127)
        return fake_quant_weight(w, self.bits, self.symmetric, self.granularity, self.group_size)


class ActQuant(nn.Module):
    """Observe activations, then fake-quantize them per tensor with frozen parameters.

    Example:
        >>> aq = ActQuant()
        >>> _ = aq(torch.linspace(0, 2.55, 256))
        >>> aq.freeze()
        >>> bool((aq(torch.tensor([1.004])) - 1.0).abs() < 1e-6)
        True
    """

    def __init__(self, bits: int = 8, symmetric: bool = False, method: Method = "minmax",
                 percentile: float = 0.9999) -> None:
        super().__init__()
        self.bits, self.symmetric, self.method, self.percentile = bits, symmetric, method, percentile
        self.mode = "observe"
        self.observer = Observer()
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("zero_point", torch.tensor(0, dtype=torch.int32))
        self._sync()

    @torch.no_grad()
    def freeze(self, method: Method | None = None) -> None:
        """Choose the range with ``method`` and switch to ``quant`` mode."""
        self.method = method or self.method
        lo, hi = self.observer.range(self.method, self.bits, self.symmetric, self.percentile)
        scale, zp = scale_zero_point(torch.tensor(lo), torch.tensor(hi), self.bits,
                                     self.symmetric)
        self.scale = scale.float().reshape(())
        self.zero_point = zp.to(torch.int32).reshape(())
        self._sync()
        self.mode = "quant"

    def _sync(self) -> None:
        # python scalars for the op: torch.export cannot trace the tensor-qparams variant
        self.qscale, self.qzero = float(self.scale), int(self.zero_point)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._sync()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "observe":
            self.observer.update(x)
            return x
        if self.mode == "off":
            return x
        qmin, qmax = qrange(self.bits, self.symmetric)
        return torch.fake_quantize_per_tensor_affine(x, self.qscale, self.qzero, qmin, qmax)


def _input_hook(mod: nn.Module, args: tuple) -> tuple:
    return (mod.input_quant(args[0]), *args[1:])


def _output_hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return mod.output_quant(out)


def attach_act_quant(module: nn.Module, where: Literal["input", "output"], **kw) -> ActQuant:
    """Add an ``ActQuant`` as ``module.input_quant``/``output_quant`` with its hook."""
    aq = ActQuant(**kw)
    if where == "input":
        module.add_module("input_quant", aq)
        module.register_forward_pre_hook(_input_hook)
    else:
        module.add_module("output_quant", aq)
        module.register_forward_hook(_output_hook)
    return aq


def act_quants(model: nn.Module) -> list[tuple[str, ActQuant]]:
    """Every ``ActQuant`` in ``model`` with its name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ActQuant)]


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The module's (possibly fake-quantized) weight as a 2-D matrix."""
    return as_matrix(module.weight)


def baked_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every parametrization folded into plain parameters,
    leaving ``model`` untouched (``netpress.api.bake`` is safe on deep copies).

    Example:
        >>> from torch.nn.utils import parametrize
        >>> lin = nn.Linear(4, 4)
        >>> _ = parametrize.register_parametrization(lin, "weight", WeightQuant(4))
        >>> plain = baked_copy(lin)
        >>> type(plain).__name__, torch.equal(plain.weight, lin.weight)
        ('Linear', True)
    """
    import copy

    from ...bake import bake

    return bake(copy.deepcopy(model))


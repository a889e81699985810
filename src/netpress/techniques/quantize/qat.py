"""Quantization-aware training: LSQ (learned step size) or plain STE, from a PTQ start.

QAT fine-tunes a model that already carries quantizers (``FixedQuant`` from weight-only
PTQ, or the int8 ``WeightQuant``/``ActQuant`` of static PTQ) with the shared training
loop (``Context.finetune``). Rounding passes gradients straight through (STE).

- ``ste``: the scales found by PTQ stay fixed; the float weights learn under them.
- ``lsq``: each weight group's step size is learned with the weights (Esser et al.,
  2020, "Learned Step Size Quantization"; gradient of the step through the rounding as
  in the paper); at the end the steps are rounded to float16, as the packed file stores
  them, and frozen again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...config import Config, register
from ...errors import ConfigError
from .weight_only import FixedQuant


@dataclass(frozen=True)
class Qat(Config):
    """Fine-tune a quantized model with its quantizers in the loop."""

    epochs: int = 3  # passes over the training set
    lr: float = 1e-4  # Adam learning rate at the start of the cosine schedule
    method: str = "lsq"  # lsq (learned step sizes) | ste (fixed PTQ scales)

    def validate(self) -> None:
        if self.epochs < 0:
            raise ConfigError("epochs must be >= 0")
        if self.lr <= 0:
            raise ConfigError("lr must be > 0")
        if self.method not in ("lsq", "ste"):
            raise ConfigError(f"method must be 'lsq' or 'ste', got {self.method!r}")


def fixed_quants(model: nn.Module) -> list[FixedQuant]:
    """Every ``FixedQuant`` parametrization in ``model``."""
    return [m for m in model.modules() if isinstance(m, FixedQuant)]


def make_lsq(model: nn.Module) -> list[nn.Parameter]:
    """Make every ``FixedQuant`` step learnable (LSQ); returns the new parameters.

    The step is learned relative to its PTQ value, ``s = s₀·(1 + δ)`` with δ starting at
    0. The paper scales the step's gradient by ``1/√(n·Q_P)`` to balance it against the
    weights' under SGD; our loop uses Adam, which is invariant to gradient scale, so that
    factor would do nothing — the relative form gives the same balance (one learning rate
    moves weights and steps by similar fractions).

    Example:
        >>> from netpress.techniques.quantize.weight_only import WeightOnly, quantize_weights
        >>> m = quantize_weights(nn.Sequential(nn.Linear(8, 4)), WeightOnly(2, 0, "rtn"))
        >>> len(make_lsq(m))
        1
    """
    steps = []
    for fq in fixed_quants(model):
        fq.step_delta = nn.Parameter(torch.zeros_like(fq.scale))
        steps.append(fq.step_delta)
    return steps


def freeze_lsq(model: nn.Module) -> None:
    """Fold learned steps into the scales, rounded to float16 as the packed file stores."""
    for fq in fixed_quants(model):
        if fq.step_delta is not None:
            with torch.no_grad():
                s = fq.step().abs().clamp(min=1e-8).half().float()
            fq.step_delta = None
            fq.scale = s


def qat(model: nn.Module, cfg: Qat, ctx) -> nn.Module:
    """Fine-tune ``model`` (already quantized) with its quantizers active.

    Example:
        >>> qat(model, Qat(epochs=2), ctx)  # doctest: +SKIP
    """
    if cfg.epochs == 0:
        return model
    if cfg.method == "lsq":
        make_lsq(model)
    try:
        ctx.finetune(model, cfg.epochs, lr=cfg.lr, description=f"QAT ({cfg.method})")
    finally:
        freeze_lsq(model)
    with torch.no_grad():  # keep observers off: activation scales stay as calibrated
        model.eval()
    return model


register(Qat)(qat)

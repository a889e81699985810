"""Post-training int8 quantization: static (weights and activations, calibrated) and dynamic.

Static int8 folds BatchNorm, puts a per-channel symmetric int8 ``WeightQuant`` on every
target weight and uint8 ``ActQuant``s on the input (and by default the output) of every
target layer, runs the calibration batches through the observers, then freezes the scales.
The result is a fake-quant torch model whose ONNX export is a QDQ graph
(``netpress.export.onnx``) that ONNX Runtime runs with int8 kernels.

Dynamic int8 is ``torch.ao.quantization.quantize_dynamic`` with per-channel weights: the
x86 int8 GEMM for Linear layers, activations quantized on the fly. It is a deployed form,
not a fine-tunable one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...batches import call, ordered_inputs, take
from ...config import Config, register
from ...errors import ConfigError, ModelError
from ...targets import Targets
from .bnfold import fold_batchnorm
from .modules import WeightQuant, act_quants, attach_act_quant
from .observers import METHODS


@dataclass(frozen=True)
class StaticInt8(Config):
    """Static int8 PTQ: per-channel int8 weights, per-tensor uint8 activations."""

    method: str = "minmax"  # activation range: minmax | ema | percentile | mse | kl
    percentile: float = 0.9999  # quantile kept by method="percentile", 0.5..1
    quantize_outputs: bool = True  # also quantize each target's output (full int8 kernels)
    fold_bn: bool = True  # fold BatchNorm into the preceding conv/linear first
    reduce_range: bool = True  # 7-bit weight codes: avoids int16 saturation on AVX2 w/o VNNI
    calib_batches: int = 0  # calibration batches of 256 to use; 0 = the whole calib set
    targets: Targets = field(default_factory=lambda: Targets(types=("Linear", "Conv2d")))

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r} is not one of {list(METHODS)}")
        if not 0.5 < self.percentile <= 1.0:
            raise ConfigError(f"percentile must be in (0.5, 1], got {self.percentile}")
        if self.calib_batches < 0:
            raise ConfigError("calib_batches must be >= 0")


@dataclass(frozen=True)
class DynamicInt8(Config):
    """Dynamic int8: int8 per-channel Linear weights, activations quantized at run time."""

    targets: Targets = field(default_factory=lambda: Targets(types=("Linear",)))


def prepare_static(model: nn.Module, cfg: StaticInt8) -> nn.Module:
    """Fold BN and attach weight/activation quantizers in observe mode (in place).

    Example:
        >>> m = prepare_static(nn.Sequential(nn.Linear(4, 3)), StaticInt8())
        >>> sorted(n for n, _ in act_quants(m))
        ['0.input_quant', '0.output_quant']
    """
    model.eval()
    if cfg.fold_bn:
        fold_batchnorm(model)
    for _, mod in cfg.targets.select(model):
        parametrize.register_parametrization(mod, "weight", WeightQuant(8, True, "channel"))
        mod.netpress_bits = 8
        attach_act_quant(mod, "input", method=cfg.method, percentile=cfg.percentile)
        if cfg.quantize_outputs:
            attach_act_quant(mod, "output", method=cfg.method, percentile=cfg.percentile)
    return model


@torch.no_grad()
def calibrate(model: nn.Module, batches, method: str | None = None,
              reduce_range: bool = True) -> nn.Module:
    """Run ``batches`` (iterable of ``(x, y)`` or ``x``) through observers, then freeze
    every activation and weight quantizer.

    Example:
        >>> m = prepare_static(nn.Sequential(nn.Linear(4, 3)), StaticInt8())
        >>> _ = calibrate(m, [torch.randn(16, 4)])
        >>> act_quants(m)[0][1].mode
        'quant'
    """
    model.eval()
    aqs = act_quants(model)
    for _, aq in aqs:
        aq.mode = "off"
    # observe layer by layer in order is unnecessary here: weights are quantized while
    # observing so activations already carry the weight error
    for mod in model.modules():
        if parametrize.is_parametrized(mod, "weight"):
            for p in mod.parametrizations.weight:
                if isinstance(p, WeightQuant):
                    p.freeze(mod.parametrizations.weight.original, reduce_range)
    for _, aq in aqs:
        aq.mode = "observe"
    seen = 0
    for b in batches:
        x = b[0] if isinstance(b, tuple | list) else b
        call(model, x)
        seen += 1
    if seen == 0:
        raise ConfigError("calibration needs at least one batch of data")
    for _, aq in aqs:
        aq.freeze(method)
    return model


@register(StaticInt8)
def apply_static_int8(model: nn.Module, cfg: StaticInt8, ctx) -> nn.Module:
    """Prepare, calibrate on ``ctx.calib_loader()`` and freeze: a fake-quant int8 model."""
    prepare_static(model, cfg)
    loader = ctx.calib_loader()
    batches = list(loader)
    if cfg.calib_batches:
        batches = batches[: cfg.calib_batches]
    return calibrate(model, batches, reduce_range=cfg.reduce_range)


def dynamic_int8(model: nn.Module, cfg: DynamicInt8 | None = None) -> nn.Module:
    """A torch dynamic-int8 copy of ``model`` (Linear layers; x86 backend).

    Example:
        >>> q = dynamic_int8(nn.Sequential(nn.Linear(4, 3)))
        >>> type(q[0]).__name__
        'Linear'
    """
    import copy

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    cfg = cfg or DynamicInt8()
    names = {n for n, _ in cfg.targets.select(model)}
    spec = {n: per_channel_dynamic_qconfig for n in names}
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)


@register(DynamicInt8)
def apply_dynamic_int8(model: nn.Module, cfg: DynamicInt8, ctx) -> nn.Module:
    """Handler: dynamic int8 of the target Linear layers."""
    return dynamic_int8(model, cfg)


def fx_static_int8(model: nn.Module, batches) -> nn.Module:
    """A torch x86 static-int8 copy of ``model`` (FX graph mode, torch's default x86
    qconfig: histogram observers for activations, per-channel weights), calibrated on
    ``batches`` (inputs, or ``(inputs, targets)``; inputs a tensor or a dict). It runs
    torch's quantized kernels (fbgemm/oneDNN), the "PyTorch x86 backend" form; its
    observers are torch's, not netpress's.

    FX must trace the model symbolically. Models with data-dependent Python control flow
    (Hugging Face transformers, whose masks and shapes are computed in Python) cannot be
    traced: then a ``ModelError`` says so and the caller skips this form.

    Example:
        >>> q = fx_static_int8(nn.Sequential(nn.Linear(4, 3)), [torch.randn(8, 4)])
        >>> q(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """
    import copy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    batches = [b[0] if isinstance(b, tuple | list) else b for b in batches]
    if not batches:
        raise ConfigError("static int8 needs at least one calibration batch")
    first = ordered_inputs(model, take(batches[0], slice(0, 1)))
    example = tuple(first.values()) if isinstance(first, dict) else (first,)
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            prepared = prepare_fx(copy.deepcopy(model).eval(),
                                  get_default_qconfig_mapping("x86"), example)
        except Exception as e:  # FX's tracer fails in many ways (TypeError, TraceError…)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelError(f"torch FX cannot trace {type(model).__name__} for static int8 "
                             f"({type(e).__name__}: {msg}); use the ONNX Runtime or "
                             "OpenVINO static int8 forms") from e
        for x in batches:
            call(prepared, x)
        return convert_fx(prepared)

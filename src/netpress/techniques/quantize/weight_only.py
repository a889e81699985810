"""Weight-only quantization (activations stay float): RTN or GPTQ, 2–8 bits, group-wise.

Each target Conv/Linear gets a ``FixedQuant`` parametrization holding its scales and
zero points (``[out, n_groups]`` buffers) and the weight is set to its quantized values,
so the model computes exactly what the packed file will rebuild, QAT can start from it
(``qat.py`` turns the scale into a learned LSQ step), and ``bake`` folds it.

GPTQ runs layer by layer in model order: each layer's Hessian comes from inputs that
already passed through the quantized layers before it, as in the paper. Calibration
batches may be tensors or dicts of keyword inputs (e.g. ``input_ids`` for a HF
``BertModel``), so transformers encoders work as well as the zoo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ...batches import call, inputs_of, real_tokens
from ...config import Config, register
from ...errors import ConfigError
from ...targets import Targets, token_embedding
from .gptq import gptq, rtn
from .primitives import as_matrix, expand_to, fake_quant


class FixedQuant(nn.Module):
    """Fake-quantize a weight on a per-group grid (``scale``/``zero_point`` buffers; under
    LSQ the step is learned as ``scale · (1 + step_delta)``, see ``qat.make_lsq``).

    Example:
        >>> fq = FixedQuant(torch.full((2, 1), 0.5), torch.zeros(2, 1), 4, True, 0)
        >>> fq(torch.tensor([[0.6, -0.2], [1.0, 9.0]])).tolist() == [[0.5, 0.0], [1.0, 3.5]]
        True
    """

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor, bits: int,
                 symmetric: bool, group_size: int) -> None:
        super().__init__()
        self.bits, self.symmetric, self.group_size = bits, symmetric, group_size
        self.register_buffer("scale", scale.float().clone())
        self.register_buffer("zero_point", zero_point.float().clone())
        self.step_delta: nn.Parameter | None = None  # learned by LSQ (qat.make_lsq)

    def step(self) -> torch.Tensor:
        """The scale as used in the forward pass: ``scale · (1 + step_delta)`` under LSQ."""
        return self.scale if self.step_delta is None else self.scale * (1 + self.step_delta)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """Unsigned integer codes of ``w`` (shifted so the smallest code is 0)."""
        from .primitives import qrange

        qmin, qmax = qrange(self.bits, self.symmetric)
        m = as_matrix(w)
        s = expand_to(self.scale.detach(), w, self.group_size or 1)
        z = expand_to(self.zero_point, w, self.group_size or 1)
        return (torch.clamp(torch.round(m / s) + z, qmin, qmax) - qmin).to(torch.int64)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        m = as_matrix(w)
        s = expand_to(self.step(), w, self.group_size or 1)
        z = expand_to(self.zero_point, w, self.group_size or 1)
        return fake_quant(m, s, z, self.bits, self.symmetric).reshape(w.shape)


@dataclass(frozen=True)
class WeightOnly(Config):
    """Weight-only quantization of Conv/Linear weights (and, with ``embedding_bits``, of
    the token-embedding table: the largest ``nn.Embedding``, by round-to-nearest per row
    group — a lookup table has no inputs for GPTQ to weigh)."""

    bits: int = 4  # bits per weight code, 2..8
    group_size: int = 128  # inputs sharing a scale; 0 = one scale per output channel
    method: str = "gptq"  # rtn | gptq
    symmetric: bool = False  # symmetric codes (no zero point) or asymmetric min-max
    damp: float = 0.01  # GPTQ: Hessian dampening, fraction of its mean diagonal
    targets: Targets = field(default_factory=lambda: Targets(types=("Linear", "Conv2d")))
    # added after targets, so positional construction keeps its meaning
    act_order: bool = False  # GPTQ: columns by decreasing Hessian diagonal (static groups)
    embedding_bits: int = 0  # bits of the token-embedding table (RTN); 0 = keep it float
    clip: bool = False  # search each group's range (shrunk min-max) for the least error

    def validate(self) -> None:
        if not 2 <= self.bits <= 8:
            raise ConfigError(f"bits must be 2..8, got {self.bits}")
        if self.group_size < 0:
            raise ConfigError("group_size must be >= 0 (0 = per output channel)")
        if self.method not in ("rtn", "gptq"):
            raise ConfigError(f"method must be 'rtn' or 'gptq', got {self.method!r}")
        if not 0 <= self.damp < 1:
            raise ConfigError("damp must be in [0, 1)")
        if self.embedding_bits and not 2 <= self.embedding_bits <= 8:
            raise ConfigError(f"embedding_bits must be 0 (float) or 2..8, got {self.embedding_bits}")


def _layer_inputs(x: torch.Tensor, mod: nn.Module) -> torch.Tensor:
    """The layer's input as rows matching the columns of its 2-D weight."""
    if isinstance(mod, nn.Conv2d):
        cols = F.unfold(x, mod.kernel_size, mod.dilation, mod.padding, mod.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


def _call(model: nn.Module, batch) -> None:
    call(model, inputs_of(batch))


class _Reached(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the Hessian hook once the layer's input is read: the rest of the forward
    pass is not needed."""


@torch.no_grad()
def layer_hessian(model: nn.Module, mod: nn.Module, batches) -> torch.Tensor:
    """``2·XᵀX/n`` of ``mod``'s inputs over ``batches`` run through ``model``.

    With token inputs (a dict holding ``attention_mask``), the rows of padding positions
    are left out: they are not text, and with short texts padded to a common length they
    would make up most of the Hessian.
    """
    acc: dict[str, torch.Tensor | int] = {"h": 0, "n": 0}
    state: dict = {"calls": 0, "stop": False}

    def hook(m, args):
        x = real_tokens(args[0].detach(), state.get("mask"))
        rows = _layer_inputs(x, m).double()
        acc["h"] = acc["h"] + rows.T @ rows
        acc["n"] = acc["n"] + rows.shape[0]
        state["calls"] += 1
        if state["stop"]:
            raise _Reached

    handle = mod.register_forward_pre_hook(hook)
    try:
        for i, b in enumerate(batches):
            x = inputs_of(b)
            state["mask"] = x.get("attention_mask") if isinstance(x, dict) else None
            try:
                _call(model, b)
            except _Reached:
                pass
            # a layer run once per forward needs nothing after it: later batches stop there
            state["stop"] = i == 0 and state["calls"] == 1 or state["stop"]
    finally:
        handle.remove()
    if not acc["n"]:
        raise ConfigError("GPTQ needs calibration batches that reach every target layer")
    return 2.0 * acc["h"] / acc["n"]


def _grouped_gptq(w: torch.Tensor, h: torch.Tensor, groups: int, cfg: WeightOnly):
    """GPTQ of a (possibly grouped) layer. A grouped convolution (depthwise ones in
    MobileNets) sees only its own group's input channels: each group of output rows is
    solved with the Hessian block of its inputs, and the grids are stacked by row."""
    kw = {"damp": cfg.damp, "act_order": cfg.act_order, "clip": cfg.clip}
    if groups == 1:
        return gptq(w, h, cfg.bits, cfg.symmetric, cfg.group_size, **kw)
    rows, cols = w.shape[0] // groups, w.shape[1]
    parts = [gptq(w[g * rows:(g + 1) * rows], h[g * cols:(g + 1) * cols, g * cols:(g + 1) * cols],
                  cfg.bits, cfg.symmetric, cfg.group_size, **kw) for g in range(groups)]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(3))


def set_fixed_quant(mod: nn.Module, q: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor,
                    bits: int, symmetric: bool, group_size: int) -> None:
    """Set ``mod.weight`` to ``q`` and register the grid as a ``FixedQuant``."""
    if parametrize.is_parametrized(mod, "weight"):
        parametrize.remove_parametrizations(mod, "weight", leave_parametrized=False)
    mod.weight.data.copy_(q.reshape(mod.weight.shape))
    parametrize.register_parametrization(
        mod, "weight", FixedQuant(scale, zp, bits, symmetric, group_size), unsafe=True)
    mod.netpress_bits = bits


@torch.no_grad()
def quantize_weights(model: nn.Module, cfg: WeightOnly, batches=()) -> nn.Module:
    """Quantize the target weights of ``model`` in place (``batches`` needed for GPTQ).

    Example:
        >>> m = quantize_weights(nn.Sequential(nn.Linear(64, 8)), WeightOnly(4, 32, "rtn"))
        >>> int(torch.unique(m[0].weight[0, :32]).numel()) <= 16
        True
    """
    model.eval()
    batches = list(batches)
    if cfg.method == "gptq" and not batches:
        raise ConfigError("GPTQ needs calibration data; pass batches or use method='rtn'")
    for _, mod in cfg.targets.select(model):
        w = as_matrix(mod.weight.detach())
        if cfg.method == "gptq":
            h = layer_hessian(model, mod, batches)
            q, scale, zp = _grouped_gptq(w, h, getattr(mod, "groups", 1), cfg)
        else:
            q, scale, zp = rtn(w, cfg.bits, cfg.symmetric, cfg.group_size, cfg.clip)
        set_fixed_quant(mod, q, scale, zp, cfg.bits, cfg.symmetric, cfg.group_size)
    table = token_embedding(model) if cfg.embedding_bits else None
    if table is not None and not parametrize.is_parametrized(table, "weight"):
        q, scale, zp = rtn(table.weight.detach(), cfg.embedding_bits, cfg.symmetric,
                           cfg.group_size, cfg.clip)
        set_fixed_quant(table, q, scale, zp, cfg.embedding_bits, cfg.symmetric, cfg.group_size)
    return model


def gptq_batches(ctx) -> list:
    """The calibration batches GPTQ's Hessians are built from: the task's calib part."""
    return list(ctx.calib_loader())


def gptq_or_rtn(model: nn.Module, cfg: WeightOnly, batches, score) -> tuple[nn.Module, dict]:
    """Quantize a copy of ``model`` with GPTQ and one with RTN (same bits, groups and range
    search) and keep the one whose validation ``score(model)`` is higher (GPTQ on a tie).

    GPTQ minimises each layer's output error on the calibration inputs, which is not the
    same as accuracy: on a small model at 4 bits the two can land within a few images of
    each other either way. This rule makes ``w4-gptq`` never worse than ``w4-rtn`` on
    validation. Returns the kept model and ``{"gptq_val", "rtn_val", "kept"}``.

    Example:
        >>> m = nn.Sequential(nn.Linear(8, 2))
        >>> x = [torch.randn(16, 8)]
        >>> q, info = gptq_or_rtn(m, WeightOnly(4, 0, "gptq"), x, lambda m: 1.0)
        >>> info["kept"]
        'gptq'
    """
    import copy

    g = quantize_weights(copy.deepcopy(model), cfg, batches)
    r = quantize_weights(copy.deepcopy(model), dataclasses.replace(cfg, method="rtn"))
    gs, rs = float(score(g)), float(score(r))
    kept = "gptq" if gs >= rs else "rtn"
    return (g if kept == "gptq" else r), {"gptq_val": gs, "rtn_val": rs, "kept": kept}


@register(WeightOnly)
def apply_weight_only(model: nn.Module, cfg: WeightOnly, ctx) -> nn.Module:
    """Handler: RTN, or GPTQ calibrated on ``gptq_batches(ctx)``."""
    return quantize_weights(model, cfg, gptq_batches(ctx) if cfg.method == "gptq" else ())


def layer_output_error(mod: nn.Module, w_ref: torch.Tensor, w_q: torch.Tensor,
                       x: torch.Tensor) -> float:
    """Relative output error ``‖(W−Q)X‖ / ‖WX‖`` of one layer on inputs ``x``."""
    rows = _layer_inputs(x, mod).float()
    ref = rows @ as_matrix(w_ref).T
    return float((rows @ (as_matrix(w_ref) - as_matrix(w_q)).T).norm() / ref.norm())

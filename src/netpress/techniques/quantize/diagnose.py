"""Per-layer quantization diagnosis: which layers hurt, measured as SQNR.

``diagnose`` (weight-only schemes): for every target layer, the SQNR of its weight under
the scheme, the SQNR of its *output* when only its weight is quantized, and the SQNR of
the model's final output in that case.

``diagnose_static`` (static int8, weights *and* activations): for every target layer,
with only that layer's quantizers on (its int8 weight, its input and output uint8
quantizers), the SQNR of its output and of the model's output; with every quantizer on,
the SQNR of its output (the error accumulated up to there); and for each of its
activation quantizers the calibrated range, the range seen, and the share of
calibration values the range clips. A clipping observer that clips too hard shows up as
a large clipped share and a low model-output SQNR on one layer.

Layers are ranked by the model-output SQNR with that layer alone quantized; the worst
are the ones to keep in higher precision (``--keep NAME`` on the CLI,
``Targets(ignore=...)`` in the API).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...batches import call
from ...targets import Targets
from .bnfold import fold_batchnorm
from .modules import ActQuant, WeightQuant
from .primitives import qrange, sqnr_db
from .weight_only import WeightOnly, quantize_weights


@torch.no_grad()
def _outputs(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    mods = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}
    hooks = [mods[n].register_forward_hook(
        lambda m, a, o, n=n: store.__setitem__(n, o.detach())) for n in names]
    try:
        store["__model__"] = call(model, x).detach()
    finally:
        for h in hooks:
            h.remove()
    return store


@torch.no_grad()
def diagnose(model: nn.Module, x: torch.Tensor, cfg: WeightOnly | None = None,
             calib: list | None = None, worst: int = 3) -> dict:
    """Per-layer weight/output/model SQNR (dB) with one layer quantized at a time.

    ``cfg`` defaults to 8-bit per-channel RTN; ``calib`` is needed for GPTQ.

    Example:
        >>> from netpress.zoo import build_model
        >>> rep = diagnose(build_model("lenet-300-100"), torch.randn(64, 1, 28, 28))
        >>> [r["name"] for r in rep["layers"]]
        ['1', '3', '5']
    """
    cfg = cfg or WeightOnly(bits=8, group_size=0, method="rtn")
    model.eval()
    names = [n for n, _ in cfg.targets.select(model)]
    ref = _outputs(model, names, x)
    rows = []
    for name in names:
        m = copy.deepcopy(model)
        one = Targets(types=cfg.targets.types, names=(name,))
        quantize_weights(m, dataclasses.replace(cfg, targets=one, embedding_bits=0), calib or ())
        mod_q = dict(m.named_modules())[name]
        w_ref = dict(model.named_modules())[name].weight
        got = _outputs(m, [name], x)
        rows.append({
            "name": name, "params": w_ref.numel(),
            "weight_sqnr_db": sqnr_db(w_ref, mod_q.weight),
            "output_sqnr_db": sqnr_db(ref[name], got[name]),
            "model_output_sqnr_db": sqnr_db(ref["__model__"], got["__model__"]),
        })
    ranked = sorted(rows, key=lambda r: r["model_output_sqnr_db"])
    return {"scheme": f"w{cfg.bits}-{cfg.method}", "group_size": cfg.group_size,
            "layers": rows, "worst": [r["name"] for r in ranked[:worst]]}


def _quantizers(mod: nn.Module) -> list[nn.Module]:
    qs: list[nn.Module] = [m for m in mod.children() if isinstance(m, ActQuant)]
    if parametrize.is_parametrized(mod, "weight"):
        qs += [p for p in mod.parametrizations.weight if isinstance(p, WeightQuant)]
    return qs


def _switch(model: nn.Module, on: set[int] | None) -> None:
    """Every quantizer on (``on=None``) or only those whose id is in ``on``."""
    for m in model.modules():
        if isinstance(m, ActQuant):
            m.mode = "quant" if on is None or id(m) in on else "off"
        elif isinstance(m, WeightQuant):
            m.enabled = on is None or id(m) in on


def _clipped(aq: ActQuant) -> dict:
    ob = aq.observer
    lo, hi = float(ob.min_val), float(ob.max_val)
    qmin, qmax = qrange(aq.bits, aq.symmetric)
    r_lo = (qmin - float(aq.zero_point)) * float(aq.scale)
    r_hi = (qmax - float(aq.zero_point)) * float(aq.scale)
    h = ob.full_hist()
    n = h.numel()
    centres = lo + (torch.arange(n, dtype=torch.float64) + 0.5) * (hi - lo) / n
    half = float(aq.scale) / 2  # within half a step of the grid's ends is rounding, not clipping
    out = float(h[(centres < r_lo - half) | (centres > r_hi + half)].sum())
    return {"range": [r_lo, r_hi], "seen": [lo, hi],
            "clipped_share": out / max(float(h.sum()), 1.0)}


@torch.no_grad()
def diagnose_static(model: nn.Module, quantized: nn.Module, x: torch.Tensor,
                    worst: int = 3) -> dict:
    """Per-layer SQNR (dB) of a static-int8 fake-quant model against its float original.

    ``quantized`` is ``apply_static_int8``'s result (BatchNorm folded, quantizers frozen);
    ``model`` the float model it came from. The float reference is ``model`` with the
    same BatchNorms folded, so layer outputs compare name by name. Every quantizer is
    left as it was found.

    Example:
        >>> import copy
import dataclasses
        >>> from netpress import Context
        >>> from netpress.data import load_split
        >>> from netpress.zoo import build_model
        >>> from netpress.techniques.quantize.ptq import StaticInt8, apply_static_int8
        >>> m = build_model("lenet-300-100")
        >>> q = apply_static_int8(copy.deepcopy(m), StaticInt8(), Context(load_split("digits")))
        >>> rep = diagnose_static(m, q, torch.randn(64, 1, 28, 28))
        >>> [r["name"] for r in rep["layers"]]
        ['1', '3', '5']
    """
    ref_model = copy.deepcopy(model).eval()
    fold_batchnorm(ref_model)
    quantized.eval()
    names = [n for n, m in quantized.named_modules() if _quantizers(m)]
    ref = _outputs(ref_model, names, x)
    mods = dict(quantized.named_modules())
    saved = {m: m.mode if isinstance(m, ActQuant) else m.enabled for m in quantized.modules()
             if isinstance(m, ActQuant | WeightQuant)}
    try:
        _switch(quantized, None)
        full = _outputs(quantized, names, x)
        rows = []
        for name in names:
            mod = mods[name]
            _switch(quantized, {id(q) for q in _quantizers(mod)})
            alone = _outputs(quantized, [name], x)
            row = {"name": name, "output_sqnr_db": sqnr_db(ref[name], alone[name]),
                   "model_output_sqnr_db": sqnr_db(ref["__model__"], alone["__model__"]),
                   "accumulated_output_sqnr_db": sqnr_db(ref[name], full[name])}
            if parametrize.is_parametrized(mod, "weight"):
                w = mod.parametrizations.weight.original
                row["params"] = w.numel()
                row["weight_sqnr_db"] = sqnr_db(w, mod.weight)
            for where in ("input_quant", "output_quant"):
                if isinstance(getattr(mod, where, None), ActQuant):
                    row[where.split("_")[0]] = _clipped(getattr(mod, where))
            rows.append(row)
    finally:
        for m, state in saved.items():  # every quantizer back as it was
            if isinstance(m, ActQuant):
                m.mode = state
            else:
                m.enabled = state
    ranked = sorted(rows, key=lambda r: r["model_output_sqnr_db"])
    return {"scheme": "int8-static", "layers": rows,
            "model_output_sqnr_db": sqnr_db(ref["__model__"], full["__model__"]),
            "worst": [r["name"] for r in ranked[:worst]]}

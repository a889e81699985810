"""Per-layer quantization diagnosis: which layers hurt, measured as SQNR.

For every target layer: the SQNR of its weight under the scheme, the SQNR of its *output*
when only its weight is quantized, and the SQNR of the model's final output in that case
(activations are not quantized here: this diagnoses weight quantization). Layers are
ranked by the model-output SQNR; the worst are the ones to keep in higher precision
(``--keep NAME`` on the CLI, ``Targets(ignore=...)`` in the API).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...targets import Targets
from .primitives import sqnr_db
from .weight_only import WeightOnly, quantize_weights


@torch.no_grad()
def _outputs(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    mods = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}
    hooks = [mods[n].register_forward_hook(
        lambda m, a, o, n=n: store.__setitem__(n, o.detach())) for n in names]
    try:
        store["__model__"] = model(x).detach()
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
        quantize_weights(m, WeightOnly(cfg.bits, cfg.group_size, cfg.method, cfg.symmetric,
                                       cfg.damp, one), calib or ())
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

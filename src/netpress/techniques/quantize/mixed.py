"""Mixed precision: per-layer sensitivity and a bit allocator under an average-bits budget.

Sensitivity of layer ``l`` at ``b`` bits is measured, not estimated: only that layer is
quantized (RTN, the cheap proxy), and the validation-set KL divergence of the model's
outputs from the float model's is recorded. The allocator then picks one bit width per
layer minimising the summed sensitivities subject to
``Σ params_l · b_l ≤ budget · Σ params_l`` (the idea of HAQ, Wang et al. 2019, with a
measured cost table instead of a learned agent): exhaustively when the choices are few,
greedily otherwise. The chosen widths are then applied with the configured method (GPTQ by
default), layer by layer in model order.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...data.loaders import ArrayLoader
from ...errors import ConfigError
from ...evaluate.metrics import predict
from ...targets import Targets
from .weight_only import WeightOnly, quantize_weights

BIT_CHOICES = (2, 3, 4, 8)


def _kl(logits: torch.Tensor, ref: torch.Tensor) -> float:
    return float(F.kl_div(F.log_softmax(logits, 1), F.log_softmax(ref, 1), log_target=True,
                          reduction="batchmean"))


def sensitivity(model: nn.Module, cfg: WeightOnly, loader: ArrayLoader,
                bits: tuple[int, ...] = BIT_CHOICES) -> list[dict]:
    """Per target layer: params and ``{bits: (val KL, val accuracy)}`` with only that
    layer quantized (RTN).

    Example:
        >>> rows = sensitivity(model, WeightOnly(), ctx.val_loader())  # doctest: +SKIP
    """
    ref, y = predict(model, loader)
    rows = []
    for name, mod in cfg.targets.select(model):
        row = {"name": name, "params": mod.weight.numel(), "kl": {}, "accuracy": {}}
        for b in bits:
            m = copy.deepcopy(model)
            quantize_weights(m, replace(cfg, bits=b, method="rtn",
                                        targets=Targets(types=cfg.targets.types, names=(name,))))
            logits, _ = predict(m, loader)
            row["kl"][b] = _kl(logits, ref)
            row["accuracy"][b] = float((logits.argmax(1) == y).float().mean())
        rows.append(row)
    return rows


def allocate(rows: list[dict], budget: float, bits: tuple[int, ...] = BIT_CHOICES) -> list[int]:
    """Bits per layer minimising summed KL with parameter-weighted mean bits ≤ ``budget``.

    Example:
        >>> rows = [{"params": 100, "kl": {2: 1.0, 4: 0.1, 8: 0.0}},
        ...         {"params": 100, "kl": {2: 0.01, 4: 0.0, 8: 0.0}}]
        >>> allocate(rows, 4.0, (2, 4, 8))
        [4, 4]
        >>> allocate(rows, 5.0, (2, 4, 8))
        [8, 2]
    """
    total = sum(r["params"] for r in rows)
    limit = budget * total + 1e-9
    if min(bits) * total > limit:
        raise ConfigError(f"a budget of {budget} bits is below the smallest width {min(bits)}")
    if len(bits) ** len(rows) <= 100_000:
        best, best_cost = None, float("inf")
        for combo in itertools.product(bits, repeat=len(rows)):
            size = sum(r["params"] * b for r, b in zip(rows, combo, strict=True))
            cost = sum(r["kl"][b] for r, b in zip(rows, combo, strict=True))
            if size <= limit and cost < best_cost:
                best, best_cost = list(combo), cost
        return best
    chosen = [max(bits)] * len(rows)
    size = sum(r["params"] * b for r, b in zip(rows, chosen, strict=True))
    while size > limit:  # lower the layer whose step down costs least KL per bit saved
        options = []
        for i, r in enumerate(rows):
            lower = [b for b in bits if b < chosen[i]]
            if lower:
                b = max(lower)
                saved = r["params"] * (chosen[i] - b)
                options.append(((r["kl"][b] - r["kl"][chosen[i]]) / saved, i, b, saved))
        _, i, b, saved = min(options)
        chosen[i], size = b, size - saved
    return chosen


def allocate_and_quantize(model: nn.Module, cfg: WeightOnly, ctx, budget: float,
                          bits: tuple[int, ...] = BIT_CHOICES) -> dict:
    """Measure sensitivities on validation data, allocate bits, quantize in place.
    Returns the table (per layer: params, chosen bits, KL and accuracy per width).

    Example:
        >>> table = allocate_and_quantize(model, WeightOnly(), ctx, 4.0)  # doctest: +SKIP
    """
    rows = sensitivity(model, cfg, ctx.val_loader(), bits)
    chosen = allocate(rows, budget, bits)
    calib = list(ctx.calib_loader()) if cfg.method == "gptq" else ()
    for row, b in zip(rows, chosen, strict=True):
        row["bits"] = b
        quantize_weights(model, replace(cfg, bits=b, targets=Targets(
            types=cfg.targets.types, names=(row["name"],))), calib)
    total = sum(r["params"] for r in rows)
    return {"budget_bits": budget, "bit_choices": list(bits),
            "average_bits": sum(r["params"] * r["bits"] for r in rows) / total,
            "layers": [{**r, "kl": {str(k): v for k, v in r["kl"].items()},
                        "accuracy": {str(k): v for k, v in r["accuracy"].items()}}
                       for r in rows]}


def plot_sensitivity(table: dict, path: str | Path) -> Path:
    """Write a PNG: per-layer KL at each width, the chosen width marked.

    Example:
        >>> plot_sensitivity(table, "sensitivity.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...io import atomic_write

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in table["layers"]:
        bits = [int(b) for b in r["kl"]]
        ax.plot(bits, [max(r["kl"][str(b)], 1e-7) for b in bits], marker="o",
                label=f"{r['name']} ({r['bits']} b)")
    ax.set_yscale("log")
    ax.set_xlabel("bits (this layer alone)")
    ax.set_ylabel("val KL vs fp32 (nats)")
    ax.set_title(f"sensitivity; budget {table['budget_bits']} bits, "
                 f"used {table['average_bits']:.2f}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100,
                                                   metadata={"Software": None}))
    plt.close(fig)
    return out

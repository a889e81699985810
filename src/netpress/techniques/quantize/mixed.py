"""Mixed precision: per-layer sensitivity and a bit allocator under an average-bits budget.

Sensitivity of layer ``l`` at ``b`` bits is measured, not estimated: only that layer is
quantized, with the method the model will be quantized with (RTN or GPTQ: GPTQ's error
compensation makes some layers far less sensitive than RTN says), and the
validation-set KL divergence of the model's outputs from the float model's is recorded.
The allocator then picks one bit width per layer minimising the summed sensitivities
subject to ``Σ params_l · b_l ≤ budget · Σ params_l`` (the idea of HAQ, Wang et al. 2019,
with a measured cost table instead of a learned agent). That is a multiple-choice
knapsack, solved by dynamic programming over the bit budget: exactly when the budget
leaves up to 200k parameter·bits above the narrowest width, else on a coarser unit with
the answer checked exactly against the budget. The chosen widths are then applied layer
by layer in model order.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch import nn

from ...errors import ConfigError
from ...targets import Targets
from ...tasks.base import Task
from .weight_only import WeightOnly, quantize_weights

BIT_CHOICES = (2, 3, 4, 5, 6, 8)


def sensitivity(model: nn.Module, cfg: WeightOnly, task: Task,
                bits: tuple[int, ...] = BIT_CHOICES, calib=()) -> list[dict]:
    """Per target layer: params and ``{bits: (val divergence, val score)}`` with only that
    layer quantized by ``cfg.method`` (GPTQ needs ``calib`` batches). The divergence is the
    task's (KL of the softmax outputs for classifiers); the rows keep the key ``kl``.

    Example:
        >>> rows = sensitivity(model, WeightOnly(), ctx.task, calib=batches)  # doctest: +SKIP
    """
    ref, y = task.predict(model, "val")
    rows = []
    for name, mod in cfg.targets.select(model):
        row = {"name": name, "params": mod.weight.numel(), "kl": {}, "accuracy": {}}
        for b in bits:
            m = copy.deepcopy(model)
            quantize_weights(m, replace(cfg, bits=b, targets=Targets(
                types=cfg.targets.types, names=(name,))), calib)
            out, _ = task.predict(m, "val")
            row["kl"][b] = task.divergence(out, ref)
            row["accuracy"][b] = task.score_outputs(out, y)
        rows.append(row)
    return rows


def allocate(rows: list[dict], budget: float, bits: tuple[int, ...] = BIT_CHOICES,
             cells: int = 200_000) -> list[int]:
    """Bits per layer minimising summed KL with parameter-weighted mean bits ≤ ``budget``
    (multiple-choice knapsack by dynamic programming; ties go to more bits).

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
    # The knapsack holds the bits above the narrowest width, so the narrowest everywhere
    # always fits. Up to `cells` parameter·bits of slack it is exact (unit 1); beyond,
    # sizes are counted in units (rounded down) and the answer is checked exactly: if it
    # overshoots, the capacity shrinks by the overshoot and the search runs again.
    low = min(bits)
    slack = limit - low * total
    unit = max(1, math.ceil(slack / cells))
    cap = int(slack // unit)
    while True:
        chosen = _knapsack(rows, bits, low, unit, cap)
        over = sum(r["params"] * (b - low) for r, b in zip(rows, chosen, strict=True)) - slack
        if over <= 0:
            return chosen
        cap = max(0, cap - max(1, math.ceil(over / unit)))


def _knapsack(rows: list[dict], bits: tuple[int, ...], low: int, unit: int,
              cap: int) -> list[int]:
    best = np.full(cap + 1, np.inf)  # best[c]: least summed KL of the layers so far in c units
    best[0] = 0.0
    picks: list[np.ndarray] = []
    for r in rows:
        new, pick = np.full(cap + 1, np.inf), np.full(cap + 1, -1)
        for b in sorted(bits, reverse=True):  # strict < below: ties keep the wider width
            size = r["params"] * (b - low) // unit
            if size > cap:
                continue
            cand = np.full(cap + 1, np.inf)
            cand[size:] = best[:cap + 1 - size] + r["kl"][b]
            better = cand < new - 1e-15
            new[better], pick[better] = cand[better], b
        best = new
        picks.append(pick)
    c = int(np.flatnonzero(best == best.min()).max())  # the least KL, then the most bits
    chosen = []
    for r, pick in zip(reversed(rows), reversed(picks), strict=True):
        b = int(pick[c])
        chosen.append(b)
        c -= r["params"] * (b - low) // unit
    return chosen[::-1]


def _apply(model: nn.Module, cfg: WeightOnly, rows: list[dict], widths: list[int],
           calib) -> nn.Module:
    for row, b in zip(rows, widths, strict=True):
        quantize_weights(model, replace(cfg, bits=b, targets=Targets(
            types=cfg.targets.types, names=(row["name"],))), calib)
    return model


def allocate_and_quantize(model: nn.Module, cfg: WeightOnly, ctx, budget: float,
                          bits: tuple[int, ...] = BIT_CHOICES) -> dict:
    """Measure sensitivities on validation data, allocate bits, quantize in place.
    Returns the table (per layer: params, chosen bits, KL and accuracy per width; and
    the candidates compared).

    The allocator adds single-layer KLs, which ignores how layer errors interact. So
    the allocation is checked: it and the uniform width that fits the budget are both
    applied to copies of the model, and the one with the lower validation KL of the
    *whole* quantized model is kept. Mixed precision is never worse than uniform on
    validation.

    Example:
        >>> table = allocate_and_quantize(model, WeightOnly(), ctx, 4.0)  # doctest: +SKIP
    """
    calib = list(ctx.calib_loader()) if cfg.method == "gptq" else ()
    task = ctx.task
    rows = sensitivity(model, cfg, task, bits, calib)
    allocated = allocate(rows, budget, bits)
    candidates = {"allocated": allocated}
    fits = [b for b in bits if b <= budget + 1e-9]
    if fits and allocated != [max(fits)] * len(rows):
        candidates["uniform"] = [max(fits)] * len(rows)
    ref, y = task.predict(model, "val")
    total = sum(r["params"] for r in rows)
    compared = []
    for name, widths in candidates.items():
        out, _ = task.predict(_apply(copy.deepcopy(model), cfg, rows, widths, calib), "val")
        compared.append({"name": name, "bits": widths, "val_kl": task.divergence(out, ref),
                         "val_accuracy": task.score_outputs(out, y),
                         "average_bits": sum(r["params"] * b for r, b in
                                             zip(rows, widths, strict=True)) / total})
    best = min(compared, key=lambda c: c["val_kl"])
    _apply(model, cfg, rows, best["bits"], calib)
    for row, b in zip(rows, best["bits"], strict=True):
        row["bits"] = b
    return {"budget_bits": budget, "bit_choices": list(bits), "chosen": best["name"],
            "candidates": compared, "average_bits": best["average_bits"],
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

"""Sensitivity analysis: how much each layer can lose on its own.

For every targeted layer, prune that layer alone to each sparsity of a sweep and
measure validation accuracy (never test accuracy: this result is used to make
decisions). ``kind="unstructured"`` zeroes the smallest weights; ``"structured"``
physically removes the lowest-L1 output channels with Torch-Pruning (the output layer
is never pruned, so it is left out of that sweep). ``ratios_for_target`` turns a sweep
into per-layer sparsities reaching a target overall sparsity, sparing sensitive layers.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn

from ...bake import bake
from ...context import Context
from ...errors import ConfigError
from ...io import write_bytes
from ...targets import Targets
from .magnitude import LayerSparsity
from .masking import masked_weights
from .masks import magnitude_mask
from .structured import StructuredPrune, channel_counts, output_layers, structured_prune

Kind = Literal["unstructured", "structured"]
DEFAULT_SWEEP = (0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95)


@dataclass
class Sensitivity:
    """Validation accuracy of the model with one layer pruned, per layer and sparsity."""

    kind: str
    sparsities: list[float]
    baseline_accuracy: float
    accuracy: dict[str, list[float]] = field(default_factory=dict)  # layer -> per sparsity
    sizes: dict[str, int] = field(default_factory=dict)  # weights (or channels) per layer

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@torch.no_grad()
def _sweep_unstructured(model, ctx, sparsities, targets, say) -> Sensitivity:
    mods = masked_weights(model, targets)
    res = Sensitivity("unstructured", list(sparsities), ctx.evaluate(model))
    for name, m in mods.items():
        say(f"sensitivity: {name}")
        w0 = m.weight.detach().clone()
        res.sizes[name] = w0.numel()
        accs = []
        for s in sparsities:
            if s == 0:  # nothing pruned: the model is the baseline, already measured
                accs.append(res.baseline_accuracy)
                continue
            m.weight.copy_(w0 * magnitude_mask(w0, s))
            accs.append(ctx.evaluate(model))
        m.weight.copy_(w0)
        res.accuracy[name] = accs
    return res


def _sweep_structured(model, ctx, sparsities, targets, say) -> Sensitivity:
    res = Sensitivity("structured", list(sparsities), ctx.evaluate(model))
    out = set(map(id, output_layers(model, ctx.example_inputs(1))))
    counts = channel_counts(model)
    for name, m in targets.select(model):
        if id(m) in out or name not in counts:
            continue
        say(f"sensitivity: {name}")
        res.sizes[name] = counts[name]
        accs = []
        for s in sparsities:
            if s == 0:
                accs.append(res.baseline_accuracy)
                continue
            trial = copy.deepcopy(model)
            cfg = StructuredPrune(ratio=0.0, overrides=(LayerSparsity(name, s),),
                                  targets=targets)
            accs.append(ctx.evaluate(structured_prune(trial, cfg, ctx)))
        res.accuracy[name] = accs
    return res


def sensitivity_sweep(
    model: nn.Module,
    ctx: Context,
    sparsities: tuple[float, ...] = DEFAULT_SWEEP,
    kind: Kind = "unstructured",
    targets: Targets = Targets(),
    progress=None,
) -> Sensitivity:
    """Prune each targeted layer alone to each sparsity; validation accuracy of each.

    The model is left unchanged (masks are baked into a copy first).

    Example:
        >>> from netpress.zoo import build_model
        >>> from netpress.data import load_split
        >>> s = sensitivity_sweep(build_model("lenet-300-100"), Context(load_split("digits")),
        ...                       sparsities=(0.0, 0.5))
        >>> list(s.accuracy), s.sizes["1"]
        (['1', '3', '5'], 235200)
    """
    for s in sparsities:
        if not 0.0 <= s < 1.0:
            raise ConfigError(f"sweep sparsities must be in [0, 1), got {s}")
    say = progress or (lambda msg: None)
    work = bake(copy.deepcopy(model)).eval()
    if kind == "unstructured":
        return _sweep_unstructured(work, ctx, sorted(sparsities), targets, say)
    if kind == "structured":
        return _sweep_structured(work, ctx, sorted(sparsities), targets, say)
    raise ConfigError(f"unknown sensitivity kind {kind!r}; use unstructured or structured")


def _allowed(res: Sensitivity, delta: float) -> dict[str, float]:
    """Each layer's largest swept sparsity whose accuracy drop is at most ``delta``."""
    out = {}
    for name, accs in res.accuracy.items():
        ok = [s for s, a in zip(res.sparsities, accs, strict=True)
              if res.baseline_accuracy - a <= delta]
        out[name] = max(ok) if ok else 0.0
    return out


def _overall(res: Sensitivity, ratios: dict[str, float]) -> float:
    total = sum(res.sizes.values())
    return sum(ratios[n] * res.sizes[n] for n in ratios) / total


def ratios_for_target(res: Sensitivity, target: float) -> dict[str, float]:
    """Per-layer sparsities whose size-weighted mean is exactly ``target``.

    All layers share one tolerated accuracy drop δ: each takes the largest swept
    sparsity whose drop is ≤ δ, and δ is the smallest value that reaches the target;
    the layers that moved at that δ are then interpolated so the target is met exactly.

    Example:
        >>> r = Sensitivity("unstructured", [0.0, 0.5, 0.9], 0.9,
        ...                 {"a": [0.9, 0.9, 0.89], "b": [0.9, 0.5, 0.1]}, {"a": 90, "b": 10})
        >>> {k: round(v, 3) for k, v in ratios_for_target(r, 0.8).items()}
        {'a': 0.889, 'b': 0.0}
    """
    if not 0.0 <= target < 1.0:
        raise ConfigError(f"target sparsity must be in [0, 1), got {target}")
    drops = sorted({max(0.0, res.baseline_accuracy - a) for accs in res.accuracy.values()
                    for a in accs} | {0.0})
    prev = {n: 0.0 for n in res.accuracy}
    for d in drops:
        cur = _allowed(res, d)
        if _overall(res, cur) >= target:
            lo, hi = _overall(res, prev), _overall(res, cur)
            t = 1.0 if hi == lo else (target - lo) / (hi - lo)
            return {n: prev[n] + t * (cur[n] - prev[n]) for n in cur}
        prev = cur
    raise ConfigError(
        f"the sweep's largest sparsities reach only {_overall(res, prev):.3f} overall; "
        f"add larger values to the sweep (--sparsities) to reach {target}"
    )


def plot_sensitivity(res: Sensitivity, path: str | os.PathLike, title: str = "") -> None:
    """Write a PNG: validation accuracy against sparsity, one line per layer (atomic)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for name, accs in res.accuracy.items():
        ax.plot([s * 100 for s in res.sparsities], [a * 100 for a in accs], marker="o",
                label=name)
    ax.axhline(res.baseline_accuracy * 100, color="grey", linestyle="--", linewidth=1,
               label="unpruned")
    unit = "weights" if res.kind == "unstructured" else "channels"
    ax.set_xlabel(f"{unit} removed from the layer alone (%)")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(title or f"{res.kind} sensitivity")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    write_bytes(path, buf.getvalue())

"""The files a compress run leaves for its report: sensitivity and weight histograms.

Both are measured, not estimated: the sensitivity sweep prunes each layer of the baseline
alone and evaluates it on validation data; the histograms count the baseline's and the
loaded artifact's actual weights. Formats are in docs/runs.md.

The sweep costs one validation pass per layer and sparsity, which for a transformer (dozens
of layers, each pass seconds) would take longer than the compression itself. So image
models with at most 12 layers get the full sweep, and text models and larger models a
bounded one — 6 layers spread over the model, 4 sparsities, 256 validation examples — that
``sensitivity.json`` marks as ``sampled`` with a ``note`` (``sweep_plan``).
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..batches import take
from ..context import Context
from ..targets import Targets, type_name
from ..techniques.prune.sensitivity import DEFAULT_SWEEP, sensitivity_sweep

HIST_BINS = 60
MAX_FULL_LAYERS = 12  # image models up to this many layers: full sweep, every histogram
SAMPLE_LAYERS = 6  # otherwise: layers swept, spread over the model
SAMPLE_SWEEP = (0.0, 0.5, 0.8, 0.95)  # … at these sparsities
SAMPLE_EXAMPLES = 256  # … on the first this many validation examples
# layers the sweep prunes: transformers' Conv1D (GPT-2) is a Linear with its weight transposed
SWEEP_TARGETS = Targets(types=("Linear", "Conv2d", "Conv1D"))


def fresh_run_dir(name: str, root: str | Path | None = None) -> Path:
    """A new folder ``root/<YYYYmmdd-HHMMSS>-<name>`` (a suffix is added if taken);
    ``root`` defaults to ``$NETPRESS_RUNS`` or ``.netpress/runs``.

    Example:
        >>> fresh_run_dir("demo", "/tmp/np-runs").name.endswith("-demo")  # doctest: +SKIP
        True
    """
    root = root or os.environ.get("NETPRESS_RUNS", ".netpress/runs")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{name}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def _spread(names: list[str], k: int) -> list[str]:
    """``k`` names spread evenly over ``names``, first and last included, in order.

    Example:
        >>> _spread([str(i) for i in range(10)], 4)
        ['0', '3', '6', '9']
    """
    if len(names) <= k:
        return list(names)
    if k == 1:
        return [names[0]]
    return [names[round(i * (len(names) - 1) / (k - 1))] for i in range(k)]


def sweep_plan(model: nn.Module, ctx: Context) -> tuple[Targets, tuple[float, ...], int | None, dict]:
    """What ``sensitivity.json`` sweeps: ``(targets, sparsities, validation examples or None
    for all, sampled info)``. Image models with at most ``MAX_FULL_LAYERS`` layers get the
    full sweep (every layer, ``DEFAULT_SWEEP``, all validation data); text models and larger
    models a bounded one: ``SAMPLE_LAYERS`` layers spread over the model,
    ``SAMPLE_SWEEP``, the first ``SAMPLE_EXAMPLES`` validation examples.

    Example:
        >>> from netpress.zoo import build_model
        >>> from netpress.data import load_split
        >>> sweep_plan(build_model("lenet5"), Context(load_split("digits")))[1:]
        ((0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95), None, {})
    """
    names = [n for n, _ in SWEEP_TARGETS.select(model)]
    text = ctx.task.kind != "image-classification"
    if not text and len(names) <= MAX_FULL_LAYERS:
        return SWEEP_TARGETS, DEFAULT_SWEEP, None, {}
    chosen = _spread(names, SAMPLE_LAYERS)
    n = min(SAMPLE_EXAMPLES, ctx.task.num_examples("val"))
    info = {"layers_total": len(names), "layers_swept": len(chosen), "val_examples": n,
            "val_examples_total": ctx.task.num_examples("val")}
    return (Targets(types=SWEEP_TARGETS.types, names=tuple(chosen)), SAMPLE_SWEEP, n, info)


def sensitivity_file(model: nn.Module, ctx: Context, progress=None) -> dict:
    """Per-layer unstructured pruning sensitivity of ``model`` on validation data, in the
    ``sensitivity.json`` layout; bounded for text and large models (``sweep_plan``), with
    ``sampled`` and a ``note`` saying what was left out.

    Example:
        >>> sensitivity_file(model, ctx)["kind"]  # doctest: +SKIP
        'unstructured'
    """
    targets, sweep, n, info = sweep_plan(model, ctx)
    if n is not None:
        x, y = ctx.task.part("val")
        ctx = dataclasses.replace(ctx, task=ctx.task.with_part("val", take(x, slice(0, n)), y[:n]))
    res = sensitivity_sweep(model, ctx, sweep, targets=targets, progress=progress)
    out = {"kind": res.kind, "sparsities": res.sparsities, "baseline": res.baseline_accuracy,
           "layers": res.accuracy, "sizes": res.sizes}
    if info:
        out["sampled"] = info
        out["note"] = (f"bounded sweep: {info['layers_swept']} of {info['layers_total']} layers "
                       f"(spread over the model), sparsities {', '.join(map(str, sweep))}, on the "
                       f"first {n} of {info['val_examples_total']} validation examples")
    return out


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of Linear, Conv2d, transformers' Conv1D and Embedding layers; for models with
    more than ``MAX_FULL_LAYERS``, that many spread over the model."""
    found = {n: m.weight.detach().flatten().float() for n, m in model.named_modules()
             if (isinstance(m, nn.Linear | nn.Conv2d | nn.Embedding) or type_name(m) == "Conv1D")
             and isinstance(getattr(m, "weight", None), torch.Tensor)}
    keep = _spread(list(found), MAX_FULL_LAYERS)
    return {n: found[n] for n in keep}


def histograms_file(before: nn.Module, after: nn.Module, bins: int = HIST_BINS) -> dict:
    """Weight histograms of every Linear/Conv2d layer present in both models, on shared
    bin edges (the range of both). ``after`` counts nonzero weights only; the fraction of
    zeros is given apart (``zeros_after``), since a pruned layer's spike at 0 would hide
    the rest.

    Example:
        >>> m = nn.Sequential(nn.Linear(4, 3))
        >>> h = histograms_file(m, m, bins=4)["layers"]["0"]
        >>> sum(h["before"]), len(h["edges"])
        (12, 5)
    """
    a, b = _weights(before), _weights(after)
    layers = {}
    for name in a:
        if name not in b:
            continue  # the layer was replaced (low-rank factors, a student)
        w0, w1 = a[name].numpy(), b[name].numpy()
        nz = w1[w1 != 0]
        lo = float(min(w0.min(), nz.min() if nz.size else w0.min()))
        hi = float(max(w0.max(), nz.max() if nz.size else w0.max()))
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
        layers[name] = {"edges": edges.tolist(),
                        "before": np.histogram(w0, edges)[0].tolist(),
                        "after": np.histogram(nz, edges)[0].tolist(),
                        "zeros_after": float((w1 == 0).mean()),
                        "distinct_after": int(np.unique(nz).size)}
    return {"layers": layers}

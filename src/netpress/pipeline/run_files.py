"""The files a compress run leaves for its report: sensitivity and weight histograms.

Both are measured, not estimated: the sensitivity sweep prunes each layer of the baseline
alone and evaluates it on validation data; the histograms count the baseline's and the
loaded artifact's actual weights. Formats are in docs/runs.md.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..context import Context
from ..techniques.prune.sensitivity import DEFAULT_SWEEP, sensitivity_sweep

HIST_BINS = 60


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


def sensitivity_file(model: nn.Module, ctx: Context, progress=None) -> dict:
    """Per-layer unstructured pruning sensitivity of ``model`` on validation data, in the
    ``sensitivity.json`` layout.

    Example:
        >>> sensitivity_file(model, ctx)["kind"]  # doctest: +SKIP
        'unstructured'
    """
    res = sensitivity_sweep(model, ctx, DEFAULT_SWEEP, progress=progress)
    return {"kind": res.kind, "sparsities": res.sparsities, "baseline": res.baseline_accuracy,
            "layers": res.accuracy, "sizes": res.sizes}


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach().flatten().float() for n, m in model.named_modules()
            if isinstance(m, nn.Linear | nn.Conv2d) and isinstance(m.weight, torch.Tensor)}


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

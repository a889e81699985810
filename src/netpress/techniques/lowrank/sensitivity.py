"""Per-layer rank choice from a sensitivity sweep on validation data.

For each layer alone, factorize it at increasing kept energies (the others stay
dense) and keep the smallest energy whose validation accuracy is within
``max_drop_pp`` of the dense model's. Layers are swept one at a time, so the sweep
costs ``len(ENERGIES)`` evaluations per layer and no training.
"""

from __future__ import annotations

import copy

from torch import nn

from ...context import Context
from .factorize import LowRank, _Spectra, factorize

ENERGIES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def sensitivity_energies(model: nn.Module, layers: list[tuple[str, nn.Module]], cfg: LowRank,
                         ctx: Context) -> dict[str, float]:
    """Smallest energy per layer whose val accuracy drop is ≤ ``cfg.max_drop_pp``.

    Example:
        >>> sensitivity_energies(model, [("1", model[1])], LowRank(), ctx)  # doctest: +SKIP
        {'1': 0.8}
    """
    base = ctx.evaluate(model)
    out = {}
    for name, m in layers:
        sp = _Spectra(m, cfg.conv)
        chosen = 1.0
        for e in ENERGIES:
            spec = sp.spec(e)
            if spec is None:  # no saving at this energy or above
                break
            trial = factorize(copy.deepcopy(model), {name: spec})
            if (base - ctx.evaluate(trial)) * 100 <= cfg.max_drop_pp:
                chosen = e
                break
        out[name] = chosen
    return out

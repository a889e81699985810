"""Weight-only quantization to an accuracy budget: the fewest bits that keep validation.

``bits_for_budget`` quantizes the model at 2, 3, 4, 5, 6 and 8 bits (GPTQ or RTN, whichever
scores higher on validation at each width, see ``gptq_or_rtn``) and returns the smallest
width whose validation score is within the budget, with every width tried. No training is
involved, so the search costs a few quantizations; the command then builds, measures and
writes the chosen scheme like any other.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from ...context import Context
from ...errors import ConfigError
from .weight_only import WeightOnly, gptq_batches, gptq_or_rtn

WIDTHS = (2, 3, 4, 5, 6, 8)


def bits_for_budget(
    model: nn.Module,
    ctx: Context,
    max_drop_pp: float,
    base: WeightOnly = WeightOnly(),
    widths: tuple[int, ...] = WIDTHS,
    progress=None,
) -> dict:
    """The fewest bits of ``widths`` whose weight-only model keeps validation within
    ``max_drop_pp`` points of ``model``'s: ``{"bits", "method", "steps", ...}``.

    Example:
        >>> from netpress.data import load_split
        >>> bits_for_budget(model, Context(load_split("digits")), 0.5)["bits"]  # doctest: +SKIP
        4
    """
    if not max_drop_pp >= 0:
        raise ConfigError(f"--max-drop-pp must be >= 0, got {max_drop_pp}")
    say = progress or (lambda s: None)
    score = ctx.evaluate(model)
    floor = score - max_drop_pp / 100.0
    batches = gptq_batches(ctx)
    steps = []
    for bits in sorted(widths):
        _, info = gptq_or_rtn(model, replace(base, bits=bits, method="gptq"), batches,
                              ctx.evaluate)
        val = max(info["gptq_val"], info["rtn_val"])
        steps.append({"bits": bits, "method": info["kept"], "val_score": val,
                      "within_budget": val >= floor})
        say(f"{bits} bits ({info['kept']}): val {val * 100:.2f} (floor {floor * 100:.2f})")
        if val >= floor:
            return {"bits": bits, "method": info["kept"], "baseline_val_score": score,
                    "max_drop_pp": max_drop_pp, "steps": steps}
    raise ConfigError(f"no width up to {max(widths)} bits keeps validation within "
                      f"{max_drop_pp} pp; allow a larger --max-drop-pp or use int8-static")

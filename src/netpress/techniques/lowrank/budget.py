"""Low-rank to an accuracy budget: the smallest parameter ratio that keeps validation within it.

``lowrank_to_budget`` walks a ladder of whole-model parameter ratios from large to small.
Each rung factorizes the dense model afresh (ranks from one shared energy threshold,
``rank_by="params"``), recovers it with the technique's recovery (early stopping,
self-distilled from the dense model) until its validation score is back within the budget
or stops improving, and keeps it if it is. The first rung that fails ends the walk; the last
kept rung is the result. Choices are made on validation; the command reports test.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from torch import nn

from ...context import Context
from ...errors import ConfigError
from ...recovery import RECOVERY, Recovery, budget_step, recover
from .factorize import LowRank, factorize, plan_ranks

LADDER = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05)


@dataclass
class LowRankBudget:
    """The kept model and plan (``None`` if no rung kept the budget) and every rung tried."""

    baseline_score: float
    max_drop_pp: float
    model: nn.Module | None = None
    plan: dict = field(default_factory=dict)
    params_ratio: float | None = None
    steps: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain values for the JSON record."""
        return {"baseline_val_score": self.baseline_score, "max_drop_pp": self.max_drop_pp,
                "chosen_params_ratio": self.params_ratio, "steps": self.steps,
                "epochs": sum(s["epochs"] for s in self.steps)}


def lowrank_to_budget(
    dense: nn.Module,
    ctx: Context,
    max_drop_pp: float,
    base: LowRank = LowRank(rank_by="params"),
    ladder: tuple[float, ...] = LADDER,
    settings: Recovery = RECOVERY["lowrank"],
    progress=None,
) -> LowRankBudget:
    """Factorize ``dense`` (left unchanged) at the smallest rung of ``ladder`` whose recovered
    validation score is within ``max_drop_pp`` points of the dense model's.

    Example:
        >>> from netpress.data import load_split
        >>> res = lowrank_to_budget(model, Context(load_split("digits")), 1.0)  # doctest: +SKIP
        >>> res.params_ratio <= 0.5  # doctest: +SKIP
        True
    """
    if not max_drop_pp >= 0:
        raise ConfigError(f"--max-drop-pp must be >= 0, got {max_drop_pp}")
    say = progress or (lambda s: None)
    score = ctx.evaluate(dense)
    floor = score - max_drop_pp / 100.0
    result = LowRankBudget(score, max_drop_pp)
    for ratio in ladder:
        plan = plan_ranks(dense, replace(base, rank_by="params", params_ratio=ratio), ctx)
        if not plan:
            continue
        net = factorize(copy.deepcopy(dense), plan)
        run = recover(net, ctx, settings, teacher=dense, stop_at=floor,
                      description=f"low-rank {ratio:g}: recover")
        if not budget_step(result.steps, say, "params_ratio", ratio, f"params ratio {ratio:g}",
                           ctx.evaluate(net), floor, len(run.losses)):
            break
        result.model, result.plan, result.params_ratio = net, plan, ratio
    return result

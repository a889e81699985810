"""Pruning to an accuracy budget: the highest sparsity that keeps validation within it.

``prune_to_budget`` climbs a ladder of sparsities in one continuous run. At each rung the
masks rise to the rung's sparsity along the AGP curve over ``ramp_epochs``, then the model
recovers (self-distilled from the unpruned model) until its validation score is back within
the budget or stops improving. A rung that ends within the budget is kept and the climb goes
on from it; the first rung that cannot be recovered ends the search, and the weights of the
last kept rung are put back. A rung stops as soon as it is back within the budget, so
its model sits just inside it; the kept rung then gets a final recovery at a lower rate
(``final``, early-stopped, best epoch kept). Easy rungs cost one epoch each, so the whole
search costs about what one long gradual schedule does. Choices are made on validation
only; the command reports test.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn

from ...context import Context
from ...errors import ConfigError
from ...recovery import RECOVERY, Recovery, budget_step
from ...targets import Targets
from .magnitude import Scope, prune_to
from .masking import overall_sparsity
from .masks import agp_sparsity
from .schedule import self_distill_loss

LADDER = (0.5, 0.8, 0.9, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)


@dataclass
class BudgetResult:
    """What the search tried: per rung the sparsity, validation score and epochs spent."""

    baseline_score: float
    max_drop_pp: float
    sparsity: float = 0.0  # the rung kept
    steps: list[dict] = field(default_factory=list)
    final: dict | None = None  # the final recovery of the kept rung: epochs, val before/after

    def as_dict(self) -> dict:
        """Plain values for the JSON record."""
        return {"baseline_val_score": self.baseline_score, "max_drop_pp": self.max_drop_pp,
                "chosen_sparsity": self.sparsity, "steps": self.steps, "final": self.final,
                "epochs": sum(s["epochs"] for s in self.steps)
                + (self.final["epochs"] if self.final else 0)}


def prune_to_budget(
    model: nn.Module,
    ctx: Context,
    max_drop_pp: float,
    ladder: tuple[float, ...] = LADDER,
    settings: Recovery = RECOVERY["prune-step"],
    final: Recovery | None = RECOVERY["prune-final"],
    ramp_epochs: int = 1,
    scope: Scope = "global",
    targets: Targets = Targets(),
    frequency: int = 50,
    progress=None,
) -> BudgetResult:
    """Prune ``model`` in place to the highest rung of ``ladder`` whose recovered validation
    score is within ``max_drop_pp`` points (of 100) of the unpruned model's.

    The masks stay on the model (``bake`` folds them). Returns every rung tried.

    Example:
        >>> from netpress.data import load_split
        >>> res = prune_to_budget(model, Context(load_split("digits")), 1.0)  # doctest: +SKIP
        >>> res.sparsity >= 0.8  # doctest: +SKIP
        True
    """
    if not max_drop_pp >= 0:
        raise ConfigError(f"--max-drop-pp must be >= 0, got {max_drop_pp}")
    if not ladder or list(ladder) != sorted(ladder) or not 0 < ladder[0] or ladder[-1] >= 1:
        raise ConfigError("the sparsity ladder must rise, with every rung in (0, 1)")
    settings.validate()
    say = progress or (lambda s: None)
    base = ctx.evaluate(model)
    floor = base - max_drop_pp / 100.0
    loss_fn = None
    if settings.self_distill > 0:
        loss_fn = self_distill_loss(ctx.task, copy.deepcopy(model), settings.self_distill,
                                    settings.temperature)
    result = BudgetResult(base, max_drop_pp)
    prune_to(model, 0.0, scope, targets)  # masks of ones: the state a failed first rung restores
    kept = copy.deepcopy(model.state_dict())
    per_epoch = len(ctx.train_loader())
    end = ramp_epochs * per_epoch
    every = max(1, min(frequency, end // 10))  # at least ten mask updates per ramp
    for s in ladder:
        start = result.sparsity

        def on_step(step: int, _total: int, start=start, s=s) -> None:
            if step <= end and (step % every == 0 or step == end):
                prune_to(model, agp_sparsity(step, s, 0, end, start), scope, targets)

        run = ctx.finetune(model, ramp_epochs + settings.max_epochs, lr=settings.lr,
                           loss_fn=loss_fn, on_step=on_step, description=f"prune: {s:.0%}",
                           patience=max(1, settings.patience), min_epochs=ramp_epochs,
                           stop_at=floor)
        # the ramp ended at s (step == end), then it recovered
        if not budget_step(result.steps, say, "sparsity", s, f"sparsity {s:.0%}",
                           ctx.evaluate(model), floor, len(run.losses)):
            break
        result.sparsity = s
        kept = copy.deepcopy(model.state_dict())
    model.load_state_dict(kept)
    if final is not None and result.sparsity > 0:
        final.validate()
        before = ctx.evaluate(model)
        run = ctx.finetune(model, final.max_epochs, lr=final.lr, loss_fn=loss_fn,
                           description="prune: final recovery", patience=max(1, final.patience))
        after = ctx.evaluate(model)
        if after < before:  # no epoch of it beat the rung as kept: keep the rung
            model.load_state_dict(kept)
        result.final = {"epochs": len(run.losses), "val_before": before,
                        "val_after": max(before, after), "kept": after >= before}
        say(f"final recovery: val {before * 100:.2f} → {after * 100:.2f} after "
            f"{len(run.losses)} epochs")
    result.sparsity = overall_sparsity(model, targets)
    return result

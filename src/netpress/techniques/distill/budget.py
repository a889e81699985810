"""Distillation to an accuracy budget: the narrowest student that keeps validation within it.

``distill_to_budget`` walks a ladder of width multipliers from wide to narrow. Each rung
builds a student of that width, distils it from the teacher with early stopping (training
stops as soon as its validation score is within the budget, or when it stops improving),
and keeps it if it got there; the first rung that does not ends the walk. Choices are made
on validation; the command reports test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torch import nn

from ...context import Context
from ...errors import ConfigError
from .distill import Distill, build_student, distill_into

LADDER = (0.75, 0.5, 0.35, 0.25, 0.15, 0.1)


@dataclass
class DistillBudget:
    """The kept student (``None`` if no width kept the budget) and every width tried."""

    baseline_score: float
    max_drop_pp: float
    student: nn.Module | None = None
    width: float | None = None
    steps: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain values for the JSON record."""
        return {"baseline_val_score": self.baseline_score, "max_drop_pp": self.max_drop_pp,
                "chosen_width": self.width, "steps": self.steps,
                "epochs": sum(s["epochs"] for s in self.steps)}


def distill_to_budget(
    teacher: nn.Module,
    ctx: Context,
    max_drop_pp: float,
    base: Distill = Distill(epochs=30, patience=3),
    ladder: tuple[float, ...] = LADDER,
    progress=None,
) -> DistillBudget:
    """Distil ``teacher`` into the narrowest width of ``ladder`` whose student's validation
    score is within ``max_drop_pp`` points of the teacher's.

    Example:
        >>> from netpress.data import load_split
        >>> res = distill_to_budget(model, Context(load_split("digits")), 2.0)  # doctest: +SKIP
        >>> res.width  # doctest: +SKIP
        0.25
    """
    if not max_drop_pp >= 0:
        raise ConfigError(f"--max-drop-pp must be >= 0, got {max_drop_pp}")
    if base.patience < 1:
        raise ConfigError("the budget search stops each student early: give patience >= 1")
    say = progress or (lambda s: None)
    score = ctx.evaluate(teacher)
    floor = score - max_drop_pp / 100.0
    result = DistillBudget(score, max_drop_pp)
    for width in ladder:
        cfg = replace(base, width=width, student="", prune_ratio=0.0)
        student = build_student(teacher, cfg, ctx.example_inputs(2), seed=ctx.seed, ctx=ctx)
        run = distill_into(student, teacher, cfg, ctx, stop_at=floor)
        val = ctx.evaluate(student)
        ok = val >= floor
        result.steps.append({"width": width, "val_score": val, "epochs": len(run.losses),
                             "params": sum(p.numel() for p in student.parameters()),
                             "within_budget": ok})
        say(f"width {width:g}: val {val * 100:.2f} (floor {floor * 100:.2f}) after "
            f"{len(run.losses)} epochs — {'kept' if ok else 'over budget, stop'}")
        if not ok:
            break
        result.student, result.width = student, width
    return result

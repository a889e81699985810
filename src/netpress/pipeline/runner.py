"""Run a recipe: every stage in order on one model, then encode the result as an artifact.

Each stage is a registered technique (``netpress.config.apply``); the runner times it
and records the validation accuracy after it, so a report can show where accuracy went.
The artifact's header gets the recipe and only deterministic metrics (accuracies), so
the same command with the same seed writes the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..api import evaluate
from ..config import apply
from ..context import Context
from ..encode.artifact import artifact_bytes
from .recipe import Recipe


@dataclass
class StageResult:
    """What one stage did: its config, wall time and validation accuracy after it.

    Example:
        >>> StageResult("WeightShare", {}, 1.5, 0.9).seconds
        1.5
    """

    technique: str
    config: dict
    seconds: float
    val_accuracy: float


@dataclass
class RunResult:
    """The compressed model (state still on it), the artifact bytes and the stage log.

    Example:
        >>> len(run_recipe(model, recipe, ctx, "lenet-300-100").artifact)  # doctest: +SKIP
        21526
    """

    model: nn.Module
    artifact: bytes
    baseline_val_accuracy: float
    test_accuracy: float
    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0


def run_recipe(model: nn.Module, recipe: Recipe, ctx: Context, spec: str,
               progress: Callable[[str], None] | None = None) -> RunResult:
    """Apply ``recipe`` to ``model`` (in place) and encode the result.

    Example:
        >>> from netpress.pipeline.recipe import parse_recipe
        >>> r = run_recipe(model, parse_recipe(text), Context(split), "lenet-300-100")  # doctest: +SKIP
        >>> len(r.artifact)  # doctest: +SKIP
        20480
    """
    say = progress or (lambda s: None)
    t_start = time.perf_counter()
    base_val = ctx.evaluate(model)
    results = []
    for i, cfg in enumerate(recipe.stages):
        say(f"stage {i + 1}/{len(recipe.stages)}: {type(cfg).__name__}")
        t0 = time.perf_counter()
        model = apply(model, cfg, ctx)
        seconds = time.perf_counter() - t0
        acc = ctx.evaluate(model)
        say(f"  validation accuracy {acc * 100:.2f}% ({seconds:.1f} s)")
        results.append(StageResult(type(cfg).__name__, cfg.to_dict(), seconds, acc))
    test_acc = evaluate(model, ctx.split).accuracy
    say("encoding")
    metrics = {"baseline_val_accuracy": base_val, "test_accuracy": test_acc,
               "val_accuracy": results[-1].val_accuracy if results else base_val,
               "seed": ctx.seed, "data": ctx.split.name}
    data = artifact_bytes(model, spec, recipe=recipe.to_dict(), metrics=metrics,
                          coder=recipe.coder, index=recipe.index)  # type: ignore[arg-type]
    return RunResult(model, data, base_val, test_acc, results, time.perf_counter() - t_start)

"""What search and compare measure on a candidate: its deployed form's latency, the
Pareto front of a set of results, and the training context of a (fractional) epoch budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..batches import take
from ..context import Context
from ..data.splits import Split
from ..errors import ConfigError
from ..profile.timing import measure_many, torch_runner
from ..tasks.base import Task
from ..tasks.classification import as_task


def batch1_latency_ms(model: nn.Module, example: torch.Tensor, threads: int = 2,
                      rounds: int = 3, calls: int = 30) -> float:
    """Median wall time (ms) of one batch-1 call of ``model`` in torch eager with
    ``threads`` intra-op threads (``profile.timing.measure_many``, after warm-up).

    Example:
        >>> batch1_latency_ms(nn.Linear(4, 2), torch.zeros(1, 4), threads=1) > 0
        True
    """
    x1 = take(example, slice(0, 1))
    lat = measure_many({"m": torch_runner(model)}, x1, batch_n=1, threads=threads,
                       rounds=rounds, batch1_calls=calls, batchn_calls=1, example_n=x1)
    return float(lat["m"]["batch1_p50"])


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (all minimised).

    Example:
        >>> dominates((1, 2), (1, 3)), dominates((1, 2), (1, 2))
        (True, False)
    """
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True))


def pareto_front(points: dict[int, Sequence[float]]) -> list[int]:
    """Keys of the points no other point dominates (every objective minimised), sorted.

    Example:
        >>> pareto_front({0: (1, 5), 1: (2, 2), 2: (3, 3)})
        [0, 1]
    """
    return sorted(k for k, p in points.items()
                  if not any(dominates(q, p) for j, q in points.items() if j != k))


def training_context(data: Task | Split, epochs: float, seed: int = 0,
                     threads: int = 2) -> tuple[Context, int]:
    """The context and whole epoch count of an epoch budget: ``epochs`` ≥ 1 must be whole
    and trains on every training image; 0 < ``epochs`` < 1 trains one epoch on a seeded
    subset of that fraction of the training set (the same subset every time).

    Example:
        >>> from netpress.data import load_split
        >>> ctx, n = training_context(load_split("digits"), 0.25)
        >>> n, ctx.train_loader().num_examples
        (1, 300)
    """
    if not epochs > 0 or (epochs >= 1 and epochs != int(epochs)) or math.isinf(epochs):
        raise ConfigError(f"--epochs {epochs}: use a whole number of epochs (1, 2, …) or a "
                          "fraction below 1 (e.g. 0.25 trains on a quarter of the training set)")
    if epochs >= 1:
        return Context(data, seed=seed, threads=threads), int(epochs)
    task = as_task(data)
    x, y = task.part("train")
    n = max(1, math.ceil(epochs * len(y)))
    g = torch.Generator().manual_seed(seed + 104_729)
    idx, _ = torch.sort(torch.randperm(len(y), generator=g)[:n])
    sub = task.with_part("train", take(x, idx), y[idx])
    return Context(sub, seed=seed, threads=threads), 1

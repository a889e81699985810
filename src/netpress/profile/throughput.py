"""Examples (sentences, images) per second over a held-out set, at the batch sizes a user
serves, every form interleaved with the baseline in the same run.

A latency at one fixed input says little about a text model: its cost follows the length
of each text, and a batch costs as much as its longest text. ``throughput`` runs every
form over the same held-out examples, in their stored order: at batch 1 each text at its
own length, at batch N consecutive groups of N cut to the group's longest text (what a
server that batches requests as they come sees). A pass is the whole set; passes of the
forms alternate (the order rotating each pass, each timed pass after one untimed call)
so a noisy neighbour slows them alike; each figure is the median of the passes. Ratios are
against the first form (the baseline).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from ..batches import Inputs, count, take
from ..data.loaders import trim_padding


def held_out_batches(inputs: Inputs, batch_size: int, limit: int | None = None) -> list[Inputs]:
    """The first ``limit`` examples of ``inputs`` in groups of ``batch_size``, in order,
    each group cut to its longest text.

    Example:
        >>> [b.shape[0] for b in held_out_batches(torch.zeros(5, 3), 2)]
        [2, 2, 1]
    """
    n = count(inputs) if limit is None else min(limit, count(inputs))
    return [trim_padding(take(inputs, slice(i, min(i + batch_size, n))))
            for i in range(0, n, batch_size)]


def throughput(
    runners: dict[str, Callable[[Inputs], object]],
    inputs: Inputs,
    batch_sizes: tuple[int, ...] = (1, 32),
    passes: int = 3,
    limit: int | None = 256,
    warmup: int = 4,
) -> dict[str, dict]:
    """Examples per second of each runner over ``inputs`` (held-out examples) at each
    batch size: ``{name: {"b1": {"per_s", "passes", "vs_baseline"}, ...}}``, medians of
    ``passes`` whole passes, the first runner the baseline.

    Example:
        >>> r = throughput({"a": lambda x: x, "b": lambda x: x}, torch.zeros(8, 2), (1, 4), passes=1)
        >>> sorted(r["b"]["b4"])
        ['passes', 'per_s', 'vs_baseline']
    """
    names = list(runners)
    out: dict[str, dict] = {k: {} for k in names}
    for bs in batch_sizes:
        batches = held_out_batches(inputs, bs, limit)
        n = sum(count(b) for b in batches)
        with torch.inference_mode():
            for name in names:  # warm-up: first calls allocate and pick kernels
                for b in batches[:warmup]:
                    runners[name](b)
            rates: dict[str, list[float]] = {k: [] for k in names}
            for p in range(passes):
                for name in names[p % len(names):] + names[:p % len(names)]:
                    run = runners[name]
                    run(batches[0])  # warm this form's caches after the other form ran
                    t0 = time.perf_counter()
                    for b in batches:
                        run(b)
                    rates[name].append(n / (time.perf_counter() - t0))
        base = statistics.median(rates[names[0]])
        for name in names:
            med = statistics.median(rates[name])
            out[name][f"b{bs}"] = {"per_s": med, "passes": rates[name],
                                   "vs_baseline": med / base}
    return out

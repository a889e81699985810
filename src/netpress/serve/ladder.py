"""The variant ladder: several forms of one model, picked per request, swapped live.

Variants are listed best first (for example fp32, int8, pruned + int8). For a request
with a latency budget the ladder picks the first variant whose expected answer time
(``MicroBatcher.estimate_ms``: batches queued ahead, its own, the batching wait, from
measured batch times) fits the budget, else the fastest. Without a budget it steps down
one rung per ``queue_step`` examples waiting on the variants above: under load, traffic
flows to the cheaper forms. ``variant`` in a request pins one by name.

``Variant.swap`` loads a new version (a new champion in the registry), warms it up off
the event loop, then replaces the batcher's model in one assignment: the batch running
on the old one finishes, the next one runs on the new one, no request is dropped.

Example:
    >>> ladder = Ladder([Variant.load("fp32", resolve("runs/base")),
    ...                  Variant.load("int8", resolve("runs/int8"))])  # doctest: +SKIP
    >>> ladder.pick(budget_ms=0.5).name  # doctest: +SKIP
    'int8'
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError
from ..runtime import Model, load
from .batcher import MicroBatcher
from .sources import Resolved

WARMUP_CALLS = 5


def example_feeds(model: Model, batch: int = 1) -> dict[str, np.ndarray]:
    """Zeros (ones for integer inputs) of the model's input shapes, dynamic dims = 8.

    Example:
        >>> example_feeds(model)["input"].shape  # doctest: +SKIP
        (1, 1, 28, 28)
    """
    feeds = {}
    for name, v in model.inputs.items():
        shape = [batch if i == 0 else (d if isinstance(d, int) and d > 0 else 8)
                 for i, d in enumerate(v["shape"])]
        dt = np.dtype(v["dtype"])
        feeds[name] = (np.ones if dt.kind in "iu" else np.zeros)(shape, dt)
    return feeds


def warm(model: Model, max_batch: int) -> tuple[float, float]:
    """Run ``model`` a few times at batch 1 and at ``max_batch``; returns the median
    ``(batch-1 ms, ms per example at max_batch)``."""
    one, big = example_feeds(model, 1), example_feeds(model, max_batch)
    t1, tn = [], []
    for _ in range(WARMUP_CALLS):
        t = time.perf_counter()
        model.run(one)
        t1.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        model.run(big)
        tn.append((time.perf_counter() - t) * 1000 / max_batch)
    return float(np.median(t1)), float(np.median(tn))


def same_interface(a: Model, b: Model) -> bool:
    """Whether two models take the same inputs (names, dtypes, ranks and fixed dims)."""
    def sig(m: Model):
        return [(n, v["dtype"], [d if isinstance(d, int) else "?" for d in v["shape"]])
                for n, v in m.inputs.items()]
    return sig(a) == sig(b)


class Variant:
    """One rung: a name, where it came from, and its batcher (which holds the model)."""

    def __init__(self, name: str, resolved: Resolved, model: Model, max_batch: int = 32,
                 max_wait_ms: float = 2.0, on_batch=None):
        self.name = name
        self.resolved = resolved
        self.batcher = MicroBatcher(model, max_batch, max_wait_ms,
                                    on_batch=(lambda n, dt: on_batch(name, n, dt)) if on_batch else None)
        b1, per = warm(model, max_batch)
        self.batcher.batch_ms, self.batcher.example_ms = b1, per

    @classmethod
    def load(cls, name: str, resolved: Resolved, threads: int = 1, **kw) -> Variant:
        """Load ``resolved.artifact`` in the runtime and warm it up."""
        return cls(name, resolved, load(resolved.artifact, threads=threads), **kw)

    @property
    def model(self) -> Model:
        """The model the next batch runs on."""
        return self.batcher.model

    @property
    def version(self) -> str:
        """The version label being served."""
        return self.resolved.version

    def swap(self, resolved: Resolved, threads: int = 1) -> None:
        """Load, check and warm ``resolved``, then make it this variant's model (call it
        off the event loop: loading takes milliseconds to seconds)."""
        new = load(resolved.artifact, threads=threads)
        if not same_interface(new, self.model):
            raise ConfigError(f"{resolved.source} ({resolved.version}) takes other inputs than "
                              f"variant {self.name} serves; not swapped")
        b1, per = warm(new, self.batcher.max_batch)
        self.batcher.model = new  # one assignment: the next batch runs on the new version
        self.batcher.batch_ms, self.batcher.example_ms = b1, per
        self.resolved = resolved


class Ladder:
    """Variants best first; ``pick`` chooses one per request."""

    def __init__(self, variants: list[Variant], queue_step: int = 64):
        if not variants:
            raise ConfigError("serve needs at least one variant")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ConfigError(f"variant names must differ, got {names}")
        for v in variants[1:]:
            if not same_interface(v.model, variants[0].model):
                raise ConfigError(f"variant {v.name} takes other inputs than {variants[0].name}; "
                                  "a ladder holds forms of one model")
        self.variants = variants
        self.by_name = {v.name: v for v in variants}
        self.queue_step = queue_step

    @property
    def first(self) -> Variant:
        """The best (most accurate) variant: its input spec is the server's."""
        return self.variants[0]

    def pick(self, budget_ms: float | None = None, n: int = 1, name: str | None = None) -> Variant:
        """The variant for one request of ``n`` examples (see the module docstring)."""
        if name is not None:
            if name not in self.by_name:
                raise KeyError(name)
            return self.by_name[name]
        if budget_ms is not None:
            for v in self.variants:
                if v.batcher.estimate_ms(n) <= budget_ms:
                    return v
            return min(self.variants, key=lambda v: v.batcher.estimate_ms(n))
        waiting = 0
        for v in self.variants:
            waiting += v.batcher.depth
            if waiting < self.queue_step:
                return v
            waiting -= self.queue_step  # this rung's share of the queue is taken
        return self.variants[-1]

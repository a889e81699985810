"""Wall-clock latency of a deployed form, measured, with the thread count stated.

Latency is the median and p95 of single calls after warm-up, at batch 1 and at a
large batch. ``measure_many`` interleaves the forms being compared round by round,
so a noisy neighbour slows them alike and their ratio stays honest.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from ..batches import call, count, take

Runner = Callable[[torch.Tensor], object]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[i]


def passive_openmp_warning() -> str | None:
    """A warning when ``OMP_WAIT_POLICY=PASSIVE`` is set, else None: torch's OpenMP threads
    then sleep between operations, so torch eager — the baseline every other runtime is
    compared with — runs several times slower at small batches (all-MiniLM-L6-v2 at batch
    1: 20 sentences/s against 86-91 with the default policy, 2 threads) and speed-ups
    against it read high. netpress's make targets set it (spinning threads of several
    processes starve each other on shared cores); time deployed forms without it.

    Example:
        >>> isinstance(passive_openmp_warning(), str | None)
        True
    """
    import os

    policy = os.environ.get("OMP_WAIT_POLICY", "")
    if policy.upper() != "PASSIVE":
        return None
    return (f"OMP_WAIT_POLICY={policy} is set: torch eager, the baseline, runs several times "
            "slower at small batches with passive OpenMP threads, so speed-ups against it "
            "read high; time without it")


def torch_runner(model: nn.Module) -> Runner:
    """A callable that runs ``model`` in eval and inference mode."""
    model.eval()

    def run(x: torch.Tensor):
        with torch.inference_mode():
            return call(model, x)

    return run


def measure_many(
    runners: dict[str, Runner],
    example: torch.Tensor,
    batch_n: int = 256,
    threads: int = 2,
    rounds: int = 5,
    batch1_calls: int = 40,
    batchn_calls: int = 4,
    example_n=None,
) -> dict[str, dict]:
    """Latency (ms) of each runner: ``batch1_p50/p95`` and ``batchN_p50/p95``.

    ``example`` is one input with batch 1 (a tensor or a dict of tensors). The batch-N
    input is ``example_n`` when given (real examples: needed for token inputs), else
    ``example`` repeated ``batch_n`` times with a little noise.

    Example:
        >>> lat = measure_many({"m": torch_runner(nn.Linear(4, 2))}, torch.zeros(1, 4), rounds=1)
        >>> sorted(lat["m"])
        ['batchN_p50', 'batchN_p95', 'batch1_p50', 'batch1_p95', 'batch_n', 'threads']
    """
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    x1 = example if count(example) == 1 else take(example, slice(0, 1))
    if example_n is not None:
        xn, batch_n = example_n, count(example_n)
    else:
        xn = x1.expand(batch_n, *x1.shape[1:]).contiguous()
        xn = xn + 0.01 * torch.randn(xn.shape, generator=torch.Generator().manual_seed(0))
    times1: dict[str, list[float]] = {k: [] for k in runners}
    timesn: dict[str, list[float]] = {k: [] for k in runners}
    for run in runners.values():  # warm-up
        for _ in range(5):
            run(x1)
        run(xn)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(batch1_calls):
                t0 = time.perf_counter()
                run(x1)
                times1[name].append(time.perf_counter() - t0)
            for _ in range(batchn_calls):
                t0 = time.perf_counter()
                run(xn)
                timesn[name].append(time.perf_counter() - t0)
    out = {}
    for name in runners:
        out[name] = {
            "batch1_p50": statistics.median(times1[name]) * 1e3,
            "batch1_p95": _pct(times1[name], 0.95) * 1e3,
            "batchN_p50": statistics.median(timesn[name]) * 1e3,
            "batchN_p95": _pct(timesn[name], 0.95) * 1e3,
            "batch_n": batch_n,
            "threads": threads,
        }
    return out


@torch.inference_mode()
def layer_latency_shares(
    model: nn.Module, x: torch.Tensor, names: list[str], repeats: int = 5
) -> dict[str, float]:
    """Each named leaf module's share of the measured forward time at ``x``'s batch size."""
    mods = dict(model.named_modules())
    spent = {n: 0.0 for n in names}
    starts: dict[str, float] = {}
    handles = []
    for n in names:
        m = mods[n] if n in mods else model
        handles.append(m.register_forward_pre_hook(
            lambda mod, inp, n=n: starts.__setitem__(n, time.perf_counter())))
        handles.append(m.register_forward_hook(
            lambda mod, inp, out, n=n: spent.__setitem__(n, spent[n] + time.perf_counter() - starts[n])))
    model.eval()
    try:
        call(model, x)
        for n in spent:
            spent[n] = 0.0
        t0 = time.perf_counter()
        for _ in range(repeats):
            call(model, x)
        total = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    return {n: spent[n] / total for n in names}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

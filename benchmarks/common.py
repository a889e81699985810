"""Shared pieces of the benchmark scripts: cached baselines, result files, the lock.

Benchmarks train for minutes, so they are not tests. Each script writes
``benchmarks/results/<name>.json`` (atomic) and prints a Markdown table for
BENCHMARKS.md. Timed sections take an exclusive lock (``/tmp/netpress-bench.lock``)
so two benchmarks never time on the same two cores at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from netpress import __version__, api  # noqa: E402
from netpress.cli.demo import cached_baseline  # noqa: E402
from netpress.data import load_split  # noqa: E402
from netpress.io import write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path(os.environ.get("NETPRESS_CACHE", ROOT / ".netpress" / "cache"))
THREADS = 2


def fashion(seed: int = 0):
    """Fashion-MNIST with netpress's split."""
    return load_split("fashion-mnist", seed=seed)


def baseline(spec: str, split, seed: int = 0):
    """The zoo baseline for ``spec`` (trained once with the zoo defaults, then cached)."""
    path = cached_baseline(spec, split, seed, CACHE)
    return api.load_model(spec, path), path


@contextmanager
def bench_lock():
    """Hold the machine-wide benchmark lock while timing."""
    with open("/tmp/netpress-bench.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def machine() -> dict:
    """What the numbers were measured on."""
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": THREADS, "torch": torch.__version__, "netpress": __version__,
            "date": time.strftime("%Y-%m-%d")}


def save_result(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine description."""
    return write_json(RESULTS / f"{name}.json", {"machine": machine(), **payload})


def load_result(name: str) -> dict:
    """Read a result file back."""
    return json.loads((RESULTS / f"{name}.json").read_text())

"""``make bench``: run every ``benchmarks/bench_*.py`` in turn (or those named)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Benchmarks that time torch eager as the baseline of another runtime run with OpenMP's
# default wait policy: under the Makefile's OMP_WAIT_POLICY=PASSIVE, torch's threads sleep
# between operations and all-MiniLM-L6-v2 runs 4x slower at batch 1 (20 against 86-91
# sentences/s), which would inflate every speed-up against it.
DEFAULT_OPENMP = {"bench_transformers", "bench_artifact"}


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(n in s.stem for n in names)]
    for s in scripts:
        print(f"== {s.name}", flush=True)
        env = dict(os.environ)
        if s.stem in DEFAULT_OPENMP:
            env.pop("OMP_WAIT_POLICY", None)
        r = subprocess.run([sys.executable, str(s)], env=env)
        if r.returncode:
            return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

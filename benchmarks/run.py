"""``make bench``: run every ``benchmarks/bench_*.py`` in turn (or those named)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(n in s.stem for n in names)]
    for s in scripts:
        print(f"== {s.name}", flush=True)
        r = subprocess.run([sys.executable, str(s)])
        if r.returncode:
            return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

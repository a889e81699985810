"""Kill a 4-stage recipe run with SIGKILL at random moments and resume it: same bytes?

One uninterrupted ``netpress compress --run-dir`` of a 4-stage recipe on lenet-300-100 /
Fashion-MNIST gives the reference artifact and its wall time T. Then, for each trial, a
fresh run is started as a subprocess and killed with SIGKILL at a uniformly random moment
in (0.5 s, 0.9 T) (a run that finishes first is not counted); the artifact path is
checked (absent, or complete and equal to the reference; never partial); the run is
resumed with ``--resume`` — killed again at random with probability 1/2, to test
resuming a resumed run — and finally resumed to the end. The
final bytes must equal the reference every time, and no temp file may be left.

Usage: python benchmarks/bench_resume.py [--trials 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CACHE, ROOT, baseline, fashion, save_result

from netpress.pipeline.checkpoints import last_complete

RECIPE = """\
name: four-stage
stages:
  - _type: StructuredPrune
    ratio: 0.25
  - _type: MagnitudePrune
    sparsity: 0.8
  - _type: Finetune
    epochs: 1
    lr: 0.0005
  - _type: WeightShare
    bits: 4
    bias_bits: 5
    finetune_epochs: 1
"""


def cmd(weights: Path, recipe: Path, run_dir: Path, resume: bool = False) -> list[str]:
    out = [sys.executable, "-m", "netpress", "compress", "--model", "lenet-300-100",
           "--weights", str(weights), "--recipe", str(recipe), "--run-dir", str(run_dir),
           "--threads", "2", "--json"]
    return out + (["--resume"] if resume else [])


def run(args: list[str], kill_after: float | None) -> tuple[bool, float]:
    """Run ``args``; SIGKILL it after ``kill_after`` seconds. Returns (killed, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True, time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed: {proc.stderr.read().decode()[-2000:]}")
    return False, time.perf_counter() - t0


def check_output(path: Path, ref: bytes) -> str:
    if not path.exists():
        return "absent"
    return "complete" if path.read_bytes() == ref else "PARTIAL OR DIFFERENT"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    _, weights = baseline("lenet-300-100", fashion())
    with tempfile.TemporaryDirectory(prefix="netpress-resume-") as tmp:
        tmp = Path(tmp)
        recipe = tmp / "four-stage.yaml"
        recipe.write_text(RECIPE)
        ref_dir = tmp / "reference"
        _, full_s = run(cmd(weights, recipe, ref_dir), None)
        ref = (ref_dir / "model.netpress").read_bytes()
        print(f"reference run: {full_s:.1f} s, {len(ref):,} bytes")
        trials, t = [], 0
        while len(trials) < args.trials:  # only runs that really were killed count
            t += 1
            run_dir = tmp / f"trial-{t}"
            kills, seen = [], []
            at = rng.uniform(0.5, 0.9 * full_s)
            killed, _ = run(cmd(weights, recipe, run_dir), at)
            if not killed:
                print(f"run {t} finished before its kill at {at:.1f} s; not counted")
                continue
            kills.append(round(at, 2))
            seen.append(check_output(run_dir / "model.netpress", ref))
            stage_at_kill = last_complete(run_dir, 4)[0]
            if killed and rng.random() < 0.5:  # kill the resumed run too
                at2 = rng.uniform(0.0, full_s / 2)
                killed2, _ = run(cmd(weights, recipe, run_dir, resume=True), at2)
                kills.append(round(at2, 2) if killed2 else None)
                seen.append(check_output(run_dir / "model.netpress", ref))
            run(cmd(weights, recipe, run_dir, resume=True), None)
            final = (run_dir / "model.netpress").read_bytes()
            temps = [str(p) for p in run_dir.rglob(".*.tmp")]
            row = {"trial": t, "kill_seconds": kills, "last_complete_stage_at_kill": stage_at_kill,
                   "output_after_kill": seen,
                   "same_bytes": final == ref, "temp_files_left": temps,
                   "sha256": hashlib.sha256(final).hexdigest()[:16]}
            trials.append(row)
            print(row)
    ok = all(r["same_bytes"] and not r["temp_files_left"] and
             all(s in ("absent", "complete") for s in r["output_after_kill"]) for r in trials)
    save_result("resume", {"recipe": RECIPE, "reference_seconds": full_s,
                           "reference_bytes": len(ref), "trials": trials, "all_ok": ok,
                           "cache": str(CACHE)})
    print(f"{sum(r['same_bytes'] for r in trials)}/{len(trials)} trials gave the reference bytes; "
          f"all checks {'passed' if ok else 'FAILED'}")


if __name__ == "__main__":
    main()

"""Search vs the best single technique on lenet5-caffe / Fashion-MNIST, 2 threads.

Runs, in one run folder, the two commands of issue 7's "Done means":

    netpress compare --model lenet5-caffe --weights W --max-acc-drop 0.5 --run-dir D --json
    netpress search  --model lenet5-caffe --weights W --max-acc-drop 0.5 --trials 30 --run-dir D --json
    netpress report D

and records the wall time of each, the best single technique within the budget, the
search's best candidate (validation drop during search, test accuracy once at the end),
and the size ratio between them. Then re-runs the best recipe with ``netpress compress``
to check it gives the same bytes. Writes benchmarks/results/search.json.

Usage: python benchmarks/bench_search.py [--trials 30] [--epochs 1] [--max-acc-drop 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, ROOT, baseline, bench_lock, fashion, save_result

SPEC = "lenet5-caffe"


def netpress(*args: str) -> tuple[dict | None, float]:
    """Run a netpress command; returns (its --json output or None, wall seconds)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "netpress", *args], env=env, capture_output=True,
                         text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"netpress {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return (json.loads(out.stdout) if "--json" in args else None), seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--epochs", default="1")
    ap.add_argument("--max-acc-drop", default="0.5")
    ap.add_argument("--run-dir", default=str(ROOT / ".netpress" / "runs" / "bench-search"))
    args = ap.parse_args()
    _, weights = baseline(SPEC, fashion())
    run_dir = Path(args.run_dir)
    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists; remove it or pass another --run-dir")
    common = ["--model", SPEC, "--weights", str(weights), "--threads", "2", "--seed", "0"]
    with bench_lock():
        compare, compare_s = netpress("compare", *common, "--max-acc-drop", args.max_acc_drop,
                                      "--epochs", args.epochs, "--run-dir", str(run_dir), "--json")
        print(f"compare: {compare_s:.0f} s; best single: {compare['best_single']}")
        search, search_s = netpress("search", *common, "--max-acc-drop", args.max_acc_drop,
                                    "--trials", str(args.trials), "--epochs", args.epochs,
                                    "--run-dir", str(run_dir), "--json")
        print(f"search: {search_s:.0f} s")
        _, report_s = netpress("report", str(run_dir))
        rerun_dir = run_dir / "rerun"
        rerun, rerun_s = netpress("compress", *common, "--recipe", search["best_recipe"],
                                  "--run-dir", str(rerun_dir), "--json")
    best, single = search["best"], compare["best_single"]
    same = (rerun_dir / "model.netpress").read_bytes() == Path(search["best_artifact"]).read_bytes()
    base_acc = search["baseline_val_accuracy"]
    row = {
        "trials": args.trials, "epochs_per_trial": args.epochs, "max_acc_drop_pp": args.max_acc_drop,
        "compare_seconds": compare_s, "search_seconds": search_s, "report_seconds": report_s,
        "best_single": single, "compare_rows": compare["rows"],
        "search_best": best, "search_best_test_accuracy": search["best_test_accuracy"],
        "baseline_val_accuracy": base_acc,
        "feasible_trials": sum(t["feasible"] for t in search["trials"]),
        "pareto": search["pareto"], "pareto_feasible": search["pareto_feasible"],
        "size_ratio_single_over_search": (single["size_bytes"] / best["size_bytes"]
                                          if single and best else None),
        "rerun_same_bytes": same, "rerun_seconds": rerun_s,
        "rerun_test_accuracy": rerun["accuracy"], "rerun_test_drop_pp": rerun["accuracy_drop_pp"],
        "run_dir": str(run_dir), "cache": str(CACHE),
        "trial_table": [{k: t[k] for k in ("number", "params", "val_accuracy", "accuracy_drop_pp",
                                           "size_bytes", "compression_ratio", "latency_ms",
                                           "feasible", "seconds")} for t in search["trials"]],
    }
    save_result("search", row)
    print(f"| search (30 trials) | {search_s / 60:.1f} min | best {best['size_bytes']:,} B "
          f"({best['compression_ratio']:.1f}×), val drop {best['accuracy_drop_pp']:.2f} pp |")
    print(f"| best single ({single['technique']}, {single['settings']}) | "
          f"{single['size_bytes']:,} B ({single['compression_ratio']:.1f}×) |")
    print(f"rerun of best-recipe.yaml gives the same bytes: {same}")


if __name__ == "__main__":
    main()

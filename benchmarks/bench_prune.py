"""Unstructured and N:M pruning on Fashion-MNIST (issue 3's targets), 2 threads.

Reproduce (from the repository root):
    .venv/bin/python benchmarks/bench_prune.py [NAME ...]

Each experiment prunes a cached zoo baseline, fine-tunes on the 55,000 training images,
and measures the pruned model against the original in the same run: test accuracy on
the 10,000 held-out images, dense and sparse (CSR) file sizes, latency (interleaved,
under the benchmark lock). Writes benchmarks/results/prune.json (rows merged by name).
"""

from __future__ import annotations

import os
import sys
import time

from common import RESULTS, THREADS, baseline, bench_lock, fashion, load_result, save_result

from netpress import api
from netpress.config import apply
from netpress.context import Context
from netpress.techniques.prune import GradualPrune, IterativePrune, MagnitudePrune, NMSparsity
from netpress.techniques.prune.nm import check_nm
from netpress.techniques.prune.report import pruned_record

EXPERIMENTS = {
    "lenet-300-100/agp-92": ("lenet-300-100", GradualPrune(
        sparsity=0.92, epochs=6, end_fraction=0.6, frequency=40, lr=5e-4)),
    "lenet-300-100/agp-92-long": ("lenet-300-100", GradualPrune(
        sparsity=0.92, epochs=15, end_fraction=0.5, frequency=40, lr=1e-3)),
    "lenet-300-100/agp-92-24ep": ("lenet-300-100", GradualPrune(
        sparsity=0.92, epochs=24, end_fraction=0.4, frequency=40, lr=1e-3)),
    "lenet-300-100/agp-92-kd": ("lenet-300-100", GradualPrune(
        sparsity=0.92, epochs=15, end_fraction=0.5, frequency=40, lr=1e-3, self_distill=0.7)),
    "lenet-300-100/agp-92-kd-40ep": ("lenet-300-100", GradualPrune(
        sparsity=0.92, epochs=40, end_fraction=0.3, frequency=40, lr=1e-3, self_distill=0.7)),
    "lenet-300-100/agp-92-kd-40ep-t2": ("lenet-300-100", GradualPrune(
        sparsity=0.92, epochs=40, end_fraction=0.3, frequency=40, lr=1e-3, self_distill=0.7,
        temperature=2.0)),
    "lenet-300-100/oneshot-92": ("lenet-300-100", MagnitudePrune(
        0.92, scope="global", finetune_epochs=6, lr=5e-4)),
    "lenet-300-100/han-q1.8": ("lenet-300-100", IterativePrune(
        quality=1.8, iterations=4, epochs_per_iteration=2, lr=5e-4)),
    "lenet-300-100/nm-2:4": ("lenet-300-100", NMSparsity(2, 4, finetune_epochs=4, lr=5e-4)),
    "lenet5-caffe/agp-92": ("lenet5-caffe", GradualPrune(
        sparsity=0.92, epochs=5, end_fraction=0.6, frequency=40, lr=5e-4)),
    "lenet5-caffe/agp-92-kd": ("lenet5-caffe", GradualPrune(
        sparsity=0.92, epochs=8, end_fraction=0.5, frequency=40, lr=1e-3, self_distill=0.7)),
}

# Fine-tuning runs on one thread: four developers share two cores, and two OpenMP
# threads per process thrash under that load. Latency is still timed with THREADS (2).
TRAIN_THREADS = int(os.environ.get("TRAIN_THREADS", 1))


def run(name: str, spec: str, cfg, split) -> dict:
    base, path = baseline(spec, split)
    model, _ = baseline(spec, split)
    t0 = time.time()
    ctx = Context(split, seed=0, threads=TRAIN_THREADS)
    apply(model, cfg, ctx)
    seconds = time.time() - t0
    extra = {"val_accuracy": ctx.evaluate(model), "baseline_val_accuracy": ctx.evaluate(base)}
    if isinstance(cfg, NMSparsity):
        extra["nm_violations"] = sum(check_nm(model, cfg.n, cfg.m, cfg.targets).values())
    api.bake(model)
    with bench_lock():
        rec = pruned_record(model, base, fashion(), spec, threads=THREADS, targets=cfg.targets)
    rec.pop("layers")
    return {"name": name, "config": cfg.to_dict(), "baseline_weights": path.name,
            "prune_seconds": seconds, **extra, **rec}


def main(names: list[str]) -> None:
    split = fashion()
    try:
        rows = {r["name"]: r for r in load_result("prune")["rows"]}
    except FileNotFoundError:
        rows = {}
    for name, (spec, cfg) in EXPERIMENTS.items():
        if names and not any(n in name for n in names):
            continue
        print(f"== {name}", flush=True)
        rows[name] = run(name, spec, cfg, split)
        save_result("prune", {"rows": [rows[k] for k in EXPERIMENTS if k in rows]})
        r = rows[name]
        print(f"  acc {r['accuracy'] * 100:.2f}% (base {r['baseline_accuracy'] * 100:.2f}%, "
              f"drop {r['accuracy_drop_pp']:.2f} pp), sparsity {r['weight_sparsity']:.4f}, "
              f"dense {r['dense_size_bytes']:,} B, sparse {r['sparse_size_bytes']:,} B, "
              f"{r['prune_seconds']:.0f} s", flush=True)
    table(rows)


def table(rows: dict) -> None:
    print("| experiment | weights removed | test top-1 | baseline | drop (pp) | dense file B "
          "| sparse file B | ratio (sparse) | b1 p50 ms (base) | b256 p50 ms (base) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in EXPERIMENTS:
        if name not in rows:
            continue
        r = rows[name]
        lat, blat = r["latency_ms"], r["baseline_latency_ms"]
        print(f"| {name} | {r['weight_sparsity'] * 100:.2f}% | {r['accuracy'] * 100:.2f}% | "
              f"{r['baseline_accuracy'] * 100:.2f}% | {r['accuracy_drop_pp']:.2f} | "
              f"{r['dense_size_bytes']:,} | {r['sparse_size_bytes']:,} | "
              f"{r['baseline_size_bytes'] / r['sparse_size_bytes']:.2f}× | "
              f"{lat['batch1_p50']:.3f} ({blat['batch1_p50']:.3f}) | "
              f"{lat['batchN_p50']:.2f} ({blat['batchN_p50']:.2f}) |")
    print(f"results: {RESULTS / 'prune.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])

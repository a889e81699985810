"""Structured pruning (physical channel removal) on Fashion-MNIST, 2 threads.

Reproduce (from the repository root):
    .venv/bin/python benchmarks/bench_prune_structured.py [NAME ...]
    ... bench_prune_structured.py --retime [NAME ...]   # time the kept models again

Each experiment removes a fraction of the channels/neurons of every layer but the
output one (Torch-Pruning dependency graph), fine-tunes on the 55,000 training images
and measures the smaller dense model against the original in the same run: test
accuracy, file size, and latency at batch 1 and 256 (interleaved, benchmark lock).
Writes benchmarks/results/prune_structured.json (rows merged by name) and keeps each
pruned model in $NETPRESS_CACHE/pruned-<name>.safetensors for ``--retime``.
"""

from __future__ import annotations

import os
import sys
import time

from common import (
    CACHE,
    RESULTS,
    THREADS,
    baseline,
    bench_lock,
    fashion,
    load_result,
    save_result,
)

from netpress import api
from netpress.context import Context
from netpress.profile import measure_many, torch_runner
from netpress.techniques.prune import StructuredPrune, structured_prune
from netpress.techniques.prune.report import pruned_record

EXPERIMENTS = {
    "lenet5-caffe/50%-l1": ("lenet5-caffe", StructuredPrune(
        0.5, importance="l1", finetune_epochs=3, lr=5e-4)),
    "lenet5-caffe/75%-l1-3steps": ("lenet5-caffe", StructuredPrune(
        0.75, importance="l1", steps=3, epochs_between=1, finetune_epochs=3, lr=5e-4)),
    "lenet5-caffe/50%-l1-kd": ("lenet5-caffe", StructuredPrune(
        0.5, importance="l1", finetune_epochs=3, lr=1e-3, self_distill=0.7)),
    "lenet5-caffe/75%-l1-3steps-kd": ("lenet5-caffe", StructuredPrune(
        0.75, importance="l1", steps=3, epochs_between=1, finetune_epochs=3, lr=1e-3,
        self_distill=0.7)),
    "lenet5-caffe/75%-l1-5steps-kd-long": ("lenet5-caffe", StructuredPrune(
        0.75, importance="l1", steps=5, epochs_between=1, finetune_epochs=6, lr=1e-3,
        self_distill=0.7)),
    "lenet5-caffe/75%-taylor-5steps-kd-10ep": ("lenet5-caffe", StructuredPrune(
        0.75, importance="taylor", steps=5, epochs_between=1, finetune_epochs=10, lr=1e-3,
        self_distill=0.7)),
    "resnet-small/50%-l1": ("resnet-small", StructuredPrune(
        0.5, importance="l1", finetune_epochs=3, lr=1e-3)),
    "resnet-small/50%-l1-kd": ("resnet-small", StructuredPrune(
        0.5, importance="l1", finetune_epochs=3, lr=1e-3, self_distill=0.7)),
    "resnet-small/50%-l1-kd-2steps-8ep": ("resnet-small", StructuredPrune(
        0.5, importance="l1", steps=2, epochs_between=2, finetune_epochs=6, lr=1e-3,
        self_distill=0.7)),
    "resnet-small/50%-l1-kd-2steps-16ep": ("resnet-small", StructuredPrune(
        0.5, importance="l1", steps=2, epochs_between=4, finetune_epochs=12, lr=1e-3,
        self_distill=0.7)),
    "lenet5-caffe/75%-taylor-global-5steps-kd-10ep": ("lenet5-caffe", StructuredPrune(
        0.75, importance="taylor", scope="global", steps=5, epochs_between=1,
        finetune_epochs=10, lr=1e-3, self_distill=0.7)),
    "lenet5-caffe/75%-taylor-5steps-kd-t2-20ep": ("lenet5-caffe", StructuredPrune(
        0.75, importance="taylor", steps=5, epochs_between=1, finetune_epochs=20, lr=1e-3,
        self_distill=0.7, temperature=2.0)),
    "resnet-small/50%-taylor-global-kd-2steps-16ep": ("resnet-small", StructuredPrune(
        0.5, importance="taylor", scope="global", steps=2, epochs_between=4,
        finetune_epochs=12, lr=1e-3, self_distill=0.7)),
    "resnet-small/50%-l1-kd-2steps-28ep": ("resnet-small", StructuredPrune(
        0.5, importance="l1", steps=2, epochs_between=4, finetune_epochs=24, lr=1e-3,
        self_distill=0.7)),
}

# Fine-tuning runs on one thread: four developers share two cores, and two OpenMP
# threads per process thrash under that load. Latency is still timed with THREADS (2).
TRAIN_THREADS = int(os.environ.get("TRAIN_THREADS", 1))


def run(name: str, spec: str, cfg, split) -> dict:
    base, path = baseline(spec, split)
    model, _ = baseline(spec, split)
    t0 = time.time()
    structured_prune(model, cfg, Context(split, seed=0, threads=TRAIN_THREADS))
    seconds = time.time() - t0
    kept = CACHE / f"pruned-{name.replace('/', '-').replace('%', 'pct')}.safetensors"
    with bench_lock():
        rec = pruned_record(model, base, split, spec, out=kept, structured=True,
                            threads=THREADS, rounds=7)
    rec.pop("layers")
    return {"name": name, "config": cfg.to_dict(), "baseline_weights": path.name,
            "prune_seconds": seconds, **rec}


def retime(names: list[str], rounds: int = 15) -> None:
    """Time the kept pruned models again against their baselines (no re-training), to
    check the speed-ups on a quieter machine; adds ``retimed_*`` keys to the rows."""
    split = fashion()
    rows = {r["name"]: r for r in load_result("prune_structured")["rows"]}
    for name, row in rows.items():
        if (names and not any(n in name for n in names)) or "out" not in row:
            continue
        spec = row["model"]
        small = api.load_model(spec, row["out"])
        base, _ = baseline(spec, split)
        with bench_lock():
            lat = measure_many({"pruned": torch_runner(small), "baseline": torch_runner(base)},
                               split.test[0][:1], threads=THREADS, rounds=rounds)
        row["retimed_latency_ms"] = lat["pruned"]
        row["retimed_baseline_latency_ms"] = lat["baseline"]
        row["retimed_speedup_batch1"] = lat["baseline"]["batch1_p50"] / lat["pruned"]["batch1_p50"]
        row["retimed_speedup_batchN"] = lat["baseline"]["batchN_p50"] / lat["pruned"]["batchN_p50"]
        print(f"{name}: b1 {row['retimed_speedup_batch1']:.2f}×, "
              f"b256 {row['retimed_speedup_batchN']:.2f}×", flush=True)
    save_result("prune_structured", {"rows": [rows[k] for k in EXPERIMENTS if k in rows]})


def main(names: list[str]) -> None:
    split = fashion()
    try:
        rows = {r["name"]: r for r in load_result("prune_structured")["rows"]}
    except FileNotFoundError:
        rows = {}
    for name, (spec, cfg) in EXPERIMENTS.items():
        if names and not any(n in name for n in names):
            continue
        print(f"== {name}", flush=True)
        rows[name] = run(name, spec, cfg, split)
        save_result("prune_structured", {"rows": [rows[k] for k in EXPERIMENTS if k in rows]})
        r = rows[name]
        print(f"  acc {r['accuracy'] * 100:.2f}% (base {r['baseline_accuracy'] * 100:.2f}%, "
              f"drop {r['accuracy_drop_pp']:.2f} pp), b256 speed-up {r['speedup_batchN']:.2f}×, "
              f"b1 {r['speedup_batch1']:.2f}×, {r['prune_seconds']:.0f} s", flush=True)
    table(rows)


def table(rows: dict) -> None:
    print("| experiment | params (base) | MACs (base) | test top-1 | baseline | drop (pp) "
          "| file B (base) | b1 p50 ms (base) | b1 speed-up | b256 p50 ms (base) "
          "| b256 speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in EXPERIMENTS:
        if name not in rows:
            continue
        r = rows[name]
        lat, blat = r["latency_ms"], r["baseline_latency_ms"]
        print(f"| {name} | {r['params']:,} ({r['baseline_params']:,}) | {r['macs']:,} "
              f"({r['baseline_macs']:,}) | {r['accuracy'] * 100:.2f}% | "
              f"{r['baseline_accuracy'] * 100:.2f}% | {r['accuracy_drop_pp']:.2f} | "
              f"{r['dense_size_bytes']:,} ({r['baseline_size_bytes']:,}) | "
              f"{lat['batch1_p50']:.3f} ({blat['batch1_p50']:.3f}) | {r['speedup_batch1']:.2f}× | "
              f"{lat['batchN_p50']:.2f} ({blat['batchN_p50']:.2f}) | {r['speedup_batchN']:.2f}× |")
    print(f"results: {RESULTS / 'prune_structured.json'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--retime"]:
        retime(sys.argv[2:])
    else:
        main(sys.argv[1:])

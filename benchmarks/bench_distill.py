"""Distillation on Fashion-MNIST (2 threads): a lenet5-caffe student with ≥ 5× fewer
parameters, distilled from the trained lenet5-caffe, against the same student trained
from scratch — same initial weights, same epochs, same learning-rate schedule, seeds 0–2.

Reproduce: ``KD_EPOCHS=4 .venv/bin/python benchmarks/bench_distill.py``
(``KD_EPOCHS`` defaults to 10; ``KD_T`` and ``KD_ALPHA`` (defaults 4 and 0.9) set the
temperature and the soft-target weight; ``KD_OUT`` names the result file, default distill).
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time

from common import THREADS, baseline, bench_lock, fashion, save_result

from netpress import api
from netpress.context import Context
from netpress.io import file_size
from netpress.profile import count_params
from netpress.techniques.distill import Distill, distill_into, scale_width
from netpress.techniques.edits import save_edited

SPEC, WIDTH, EPOCHS, LR, SEEDS = "lenet5-caffe", 0.4, int(os.environ.get("KD_EPOCHS", 10)), \
    1e-3, (0, 1, 2)
CFG = Distill(width=WIDTH, epochs=EPOCHS, lr=LR, temperature=float(os.environ.get("KD_T", 4.0)),
              alpha=float(os.environ.get("KD_ALPHA", 0.9)))
OUT = os.environ.get("KD_OUT", "distill")


def main() -> None:
    split = fashion()
    teacher, _ = baseline(SPEC, split)
    teacher_acc = api.evaluate(teacher, split).accuracy
    x = split.train[0][:2]
    runs = []
    for seed in SEEDS:
        ctx = Context(split, seed=seed, threads=THREADS)
        init = scale_width(teacher, WIDTH, x, seed=seed)
        scratch = copy.deepcopy(init)
        t0 = time.perf_counter()
        ctx.finetune(scratch, EPOCHS, lr=LR, description=f"scratch seed {seed}")
        t1 = time.perf_counter()
        distilled = copy.deepcopy(init)
        distill_into(distilled, teacher, CFG, ctx)
        t2 = time.perf_counter()
        runs.append({"seed": seed, "scratch_accuracy": api.evaluate(scratch, split).accuracy,
                     "distilled_accuracy": api.evaluate(distilled, split).accuracy,
                     "scratch_val": ctx.evaluate(scratch), "distilled_val": ctx.evaluate(distilled),
                     "scratch_seconds": t1 - t0, "distill_seconds": t2 - t1})
        print(runs[-1], flush=True)
        if seed == SEEDS[0]:
            keep = distilled
    with tempfile.TemporaryDirectory() as d:
        size = file_size(save_edited(keep, os.path.join(d, "s.safetensors"), SPEC))
    with bench_lock():
        rec = api.profile(keep, split, name=f"{SPEC} width {WIDTH} distilled (seed 0)",
                          baseline=teacher, size_bytes=size, threads=THREADS)
    sc = [r["scratch_accuracy"] for r in runs]
    di = [r["distilled_accuracy"] for r in runs]
    summary = {
        "teacher_accuracy": teacher_acc, "teacher_params": count_params(teacher),
        "student_params": count_params(keep),
        "param_reduction": count_params(teacher) / count_params(keep),
        "scratch_mean": statistics.mean(sc), "scratch_stdev": statistics.stdev(sc),
        "distilled_mean": statistics.mean(di), "distilled_stdev": statistics.stdev(di),
        "gap_to_teacher_pp": (teacher_acc - statistics.mean(di)) * 100,
        "gain_over_scratch_pp": (statistics.mean(di) - statistics.mean(sc)) * 100,
    }
    save_result(OUT, {"config": CFG.to_dict(), "epochs": EPOCHS, "seeds": list(SEEDS),
                            "runs": runs, "summary": summary, "record": rec})
    print("| seed | scratch top-1 | distilled top-1 |")
    print("|---|---|---|")
    for r in runs:
        print(f"| {r['seed']} | {r['scratch_accuracy'] * 100:.2f}% | "
              f"{r['distilled_accuracy'] * 100:.2f}% |")
    print(f"| mean | {summary['scratch_mean'] * 100:.2f}% | {summary['distilled_mean'] * 100:.2f}% |")
    print(summary)
    lat, blat = rec["latency_ms"], rec["baseline_latency_ms"]
    print(f"size {rec['size_bytes']:,} vs {rec['baseline_size_bytes']:,} B; b1 p50 "
          f"{lat['batch1_p50']:.3f} vs {blat['batch1_p50']:.3f} ms; b256 p50 "
          f"{lat['batchN_p50']:.3f} vs {blat['batchN_p50']:.3f} ms; MACs {rec['macs']:,}")


if __name__ == "__main__":
    main()

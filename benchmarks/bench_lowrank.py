"""Low-rank factorization on Fashion-MNIST (2 threads).

1. Truncated SVD of lenet-300-100 at ≤ 30% of its parameters (ranks from one shared
   energy threshold), fine-tuned; accuracy and batch-256 latency vs the dense model,
   measured in the same run.
2. Tucker-2 (and CP, for comparison) of lenet5-caffe's second conv: the layer's own
   latency, dense vs factorized, timed interleaved; whole-model accuracy after
   fine-tuning.

Reproduce: ``.venv/bin/python
benchmarks/bench_lowrank.py [svd] [conv] [cp]``
(no argument: all three parts).
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile

from common import THREADS, baseline, bench_lock, fashion, save_result

from netpress import api
from netpress.context import Context
from netpress.io import file_size
from netpress.profile import count_params, measure_many, torch_runner
from netpress.targets import Targets
from netpress.techniques.edits import save_edited
from netpress.techniques.lowrank import LowRank, factorize, plan_ranks

SVD_EPOCHS, SVD_LR = 5, 5e-4
CONV_EPOCHS, CONV_LR, CONV_ENERGY = 2, 3e-4, 0.8


def edited_size(model, spec: str) -> int:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        save_edited(model, path, spec)
        return file_size(path)


def svd_part(split) -> dict:
    spec = "lenet-300-100"
    dense, _ = baseline(spec, split)
    ctx = Context(split, seed=0, threads=THREADS)
    cfg = LowRank(rank_by="params", params_ratio=0.3, conv="skip")
    plan = plan_ranks(dense, cfg)
    model = factorize(copy.deepcopy(dense), plan)
    acc_before = api.evaluate(model, split).accuracy
    ctx.finetune(model, SVD_EPOCHS, lr=SVD_LR, description="fine-tune svd")
    with bench_lock():
        rec = api.profile(model, split, name=f"{spec} svd", baseline=dense,
                          size_bytes=edited_size(model, spec), threads=THREADS)
    sweep = []
    for e in (0.5, 0.7, 0.8, 0.9, 0.95):
        p = plan_ranks(dense, LowRank(energy=e, conv="skip"))
        m = factorize(copy.deepcopy(dense), p)
        sweep.append({"energy": e, "ranks": {n: s["rank"] for n, s in p.items()},
                      "params": count_params(m), "accuracy_no_finetune":
                      api.evaluate(m, split).accuracy})
    return {"plan": plan, "params_ratio": rec["params"] / count_params(dense),
            "accuracy_before_finetune": acc_before, "finetune_epochs": SVD_EPOCHS,
            "finetune_lr": SVD_LR, "record": rec, "energy_sweep": sweep}


def conv_part(split, kind: str, energy: float) -> dict:
    spec = "lenet5-caffe"
    dense, _ = baseline(spec, split)
    ctx = Context(split, seed=0, threads=THREADS)
    cfg = LowRank(energy=energy, conv=kind, targets=Targets(types=("Conv2d",), names=("conv2",)))
    plan = plan_ranks(dense, cfg)
    model = factorize(copy.deepcopy(dense), plan)
    acc_before = api.evaluate(model, split).accuracy
    x = split.test[0][:1]
    conv_in = dense.pool1(dense.conv1(x)).detach()
    ctx.finetune(model, CONV_EPOCHS, lr=CONV_LR, description=f"fine-tune {kind}")
    with bench_lock():
        layer = measure_many({"dense": torch_runner(dense.conv2),
                              kind: torch_runner(model.conv2)}, conv_in, batch_n=256,
                             threads=THREADS, rounds=7)
        rec = api.profile(model, split, name=f"{spec} {kind} conv2", baseline=dense,
                          size_bytes=edited_size(model, spec), threads=THREADS)
    return {"kind": kind, "energy": energy, "plan": plan,
            "params_ratio": rec["params"] / count_params(dense), "accuracy_before_finetune": acc_before,
            "finetune_epochs": CONV_EPOCHS, "finetune_lr": CONV_LR,
            "conv2_params": {"dense": dense.conv2.weight.numel() + dense.conv2.bias.numel(),
                             kind: count_params(model.conv2)},
            "conv2_latency_ms": layer,
            "conv2_speedup_batch1": layer["dense"]["batch1_p50"] / layer[kind]["batch1_p50"],
            "conv2_speedup_batch256": layer["dense"]["batchN_p50"] / layer[kind]["batchN_p50"],
            "record": rec}


def print_rows(parts: list[dict]) -> None:
    print("| model | params | ratio | acc before FT | acc after FT | dense acc | drop pp "
          "| b256 p50 ms | dense b256 p50 ms | b1 p50 ms | dense b1 p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for part in parts:
        r = part["record"]
        lat, blat = r["latency_ms"], r["baseline_latency_ms"]
        print(f"| {r['model']} | {r['params']:,} | {part['params_ratio']:.3f} "
              f"| {part['accuracy_before_finetune'] * 100:.2f}% | {r['accuracy'] * 100:.2f}% "
              f"| {r['baseline_accuracy'] * 100:.2f}% | {r['accuracy_drop_pp']:.2f} "
              f"| {lat['batchN_p50']:.3f} | {blat['batchN_p50']:.3f} | {lat['batch1_p50']:.3f} "
              f"| {blat['batch1_p50']:.3f} |")


def main(parts: list[str]) -> None:
    split = fashion()
    if not parts or "svd" in parts:
        svd = svd_part(split)
        save_result("lowrank_svd", {"threads": THREADS, "svd": svd})
        print_rows([svd])
    done = []
    for kind, part in (("tucker2", "conv"), ("cp", "cp")):
        if not parts or part in parts:
            done.append(conv_part(split, kind, CONV_ENERGY))
            save_result(f"lowrank_{kind}", {"threads": THREADS, kind: done[-1]})
    if done:
        print_rows(done)
        for part in done:
            print(f"{part['kind']} conv2 plan {part['plan']}: params {part['conv2_params']}, "
                  f"speedup b1 {part['conv2_speedup_batch1']:.2f}×, "
                  f"b256 {part['conv2_speedup_batch256']:.2f}×")


if __name__ == "__main__":
    main(sys.argv[1:])

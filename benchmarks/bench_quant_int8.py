"""Static and dynamic int8 PTQ on Fashion-MNIST: accuracy per observer, every deployed form's
latency (fp32 and int8, torch / ONNX Runtime / OpenVINO) measured in one run, 2 threads.

Reproduce: ``.venv/bin/python
benchmarks/bench_quant_int8.py [--observers-only] [model ...]`` (default: lenet-300-100
lenet5-caffe). ``--observers-only`` re-measures the observer table and keeps the deployed
forms' timings already in the result file.
The observer used for the deployed run is chosen on validation accuracy, never on test.
"""

from __future__ import annotations

import copy
import sys

from common import THREADS, baseline, bench_lock, fashion, load_result, save_result

from netpress import api
from netpress.context import Context
from netpress.export.onnx import export_onnx
from netpress.export.runtimes import ort_runner, runner_accuracy
from netpress.techniques.quantize.observers import METHODS
from netpress.techniques.quantize.ptq import StaticInt8, apply_static_int8
from netpress.techniques.quantize.run import quantize_and_measure


def observers(model, split, tmp) -> list[dict]:
    """Static int8 with each observer: torch simulation and ONNX Runtime QDQ accuracy."""
    rows = []
    ctx = Context(split)
    for method in METHODS:
        q = apply_static_int8(copy.deepcopy(model), StaticInt8(method=method), ctx)
        path = export_onnx(q, split.test[0][:1], tmp / f"{method}.onnx")
        run = ort_runner(path, THREADS)
        rows.append({"observer": method,
                     "val_accuracy_ort": runner_accuracy(run, *split.val),
                     "test_accuracy_ort": runner_accuracy(run, *split.test),
                     "test_accuracy_fakequant": api.evaluate(q, split).accuracy})
    return rows


def main(specs: list[str]) -> None:
    import tempfile
    from pathlib import Path

    split = fashion()
    try:
        results = load_result("quant_int8")["models"]
    except (FileNotFoundError, KeyError):
        results = {}
    for spec in specs:
        model, _ = baseline(spec, split)
        base_test = api.evaluate(model, split).accuracy
        base_val = Context(split).evaluate(model)
        with tempfile.TemporaryDirectory() as d:
            obs = observers(model, split, Path(d))
        for r in obs:
            r["drop_pp_ort"] = (base_test - r["test_accuracy_ort"]) * 100
        best = max(obs, key=lambda r: (r["val_accuracy_ort"], r["observer"] == "minmax"))
        if OBSERVERS_ONLY and spec in results:
            results[spec].update(observers=obs, observer_chosen_on_val_now=best["observer"])
            save_result("quant_int8", {"models": results})
            continue
        rec = quantize_and_measure(model, split, spec, "int8", backend="auto",
                                   observer=best["observer"], threads=THREADS,
                                   timing_lock=bench_lock, say=print)
        results[spec] = {"baseline_test_accuracy": base_test, "baseline_val_accuracy": base_val,
                         "observers": obs, "observer_chosen_on_val": best["observer"],
                         "forms": rec["forms"], "chosen_form": rec["chosen_form"],
                         "warnings": rec["warnings"]}
        save_result("quant_int8", {"models": results})
    for spec, res in results.items():
        print(f"\n### {spec} (fp32 test {res['baseline_test_accuracy'] * 100:.2f}%)\n")
        print("| observer | ORT int8 test acc | drop pp | torch fake-quant test acc |")
        print("|---|---|---|---|")
        for r in res["observers"]:
            print(f"| {r['observer']} | {r['test_accuracy_ort'] * 100:.2f}% | "
                  f"{r['drop_pp_ort']:.2f} | {r['test_accuracy_fakequant'] * 100:.2f}% |")
        print(f"\nobserver chosen on validation: {res['observer_chosen_on_val']}\n")
        base = res["forms"][0]["latency_ms"]
        print("| form | test acc | file bytes | b1 p50 ms | b256 p50 ms | b1 vs fp32 torch | "
              "b256 vs fp32 torch |")
        print("|---|---|---|---|---|---|---|")
        for f in res["forms"]:
            lat = f["latency_ms"]
            print(f"| {f['name']} | {f['accuracy'] * 100:.2f}% | {f['size_bytes']:,} | "
                  f"{lat['batch1_p50']:.3f} | {lat['batchN_p50']:.3f} | "
                  f"{base['batch1_p50'] / lat['batch1_p50']:.2f}× | "
                  f"{base['batchN_p50'] / lat['batchN_p50']:.2f}× |")
        for w in res["warnings"]:
            print(f"- warning: {w}")


OBSERVERS_ONLY = "--observers-only" in sys.argv

if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--observers-only"] or ["lenet-300-100", "lenet5-caffe"])

"""Baselines of the zoo on Fashion-MNIST: accuracy and profile figures.

Reproduce: ``.venv/bin/python benchmarks/bench_baselines.py`` (2 threads).
"""

from __future__ import annotations

from common import THREADS, baseline, bench_lock, fashion, save_result

from netpress import api
from netpress.zoo import ZOO


def main() -> None:
    split = fashion()
    rows = []
    for spec in ZOO:
        model, path = baseline(spec, split)
        ev = api.evaluate(model, split)
        with bench_lock():
            rec = api.profile(model, split, name=spec, threads=THREADS)
        rows.append({"model": spec, "epochs": ZOO[spec].epochs, "weights": path.name,
                     "test_accuracy": ev.accuracy, "top5": ev.top5, "params": rec["params"],
                     "macs": rec["macs"], "size_bytes": rec["size_bytes"],
                     "latency_ms": rec["latency_ms"], "peak_rss_mb": rec["peak_rss_mb"]})
    save_result("baselines", {"rows": rows})
    print("| model | epochs | test top-1 | params | MACs | file bytes | b1 p50 ms | b1 p95 ms "
          "| b256 p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lat = r["latency_ms"]
        print(f"| {r['model']} | {r['epochs']} | {r['test_accuracy'] * 100:.2f}% | "
              f"{r['params']:,} | {r['macs']:,} | {r['size_bytes']:,} | {lat['batch1_p50']:.3f} "
              f"| {lat['batch1_p95']:.3f} | {lat['batchN_p50']:.2f} |")


if __name__ == "__main__":
    main()

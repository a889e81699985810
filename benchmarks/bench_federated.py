"""Federated training on Flower with compressed client updates, Fashion-MNIST.

Reproduce (from the repository root):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_federated.py [NAME ...]

8 clients hold non-identical shards of the 55,000 training images (Dirichlet class split,
alpha 0.5). Every run starts lenet-300-100 from the same seeded initialisation and trains
it for 5, 10, 20 or 30 FedAvg rounds of one local epoch ("fine-tune:" rows start from one
central epoch on the first 5,000 training images instead; "seed N" rows draw another
class split and other client seeds); client updates are sent as fp32 (plain FedAvg, the
reference), or top-10 % with error feedback and 8- or 4-bit values. Each row is compared
with the fp32 FedAvg row of the same rounds, seed and start. The 20-round setting was
chosen on the validation split (the 5,000 held-out training images; ``val_accuracy``
per round), never on test. Figures: the bytes
of every client update of the run (numpy payload; Flower's ArrayRecord count beside it),
the ratio against fp32 FedAvg, and test accuracy against fp32 FedAvg and against the
centrally trained zoo baseline. The final model is written as a ``.netpress`` artifact
(its bytes reported). Writes benchmarks/results/federated.json. No timings.
"""

from __future__ import annotations

import os
import sys

from common import RESULTS, baseline, fashion, load_result, save_result

from netpress.distributed.federated import FedConfig, run_federated
from netpress.encode.artifact import artifact_bytes
from netpress.evaluate.metrics import accuracy
from netpress.zoo import build_model

BASE = dict(clients=8, rounds=5, local_epochs=1, lr=1e-3, alpha=0.5, batch_size=64, seed=0)
R20, R30 = {**BASE, "rounds": 20}, {**BASE, "rounds": 30}
RUNS = {
    "fp32 FedAvg": FedConfig(**BASE),
    "top-10% + 8-bit": FedConfig(**BASE, ratio=0.1, bits=8),
    "top-10% + 4-bit": FedConfig(**BASE, ratio=0.1, bits=4),
    "fp32 FedAvg, 10 rounds": FedConfig(**{**BASE, "rounds": 10}),
    "top-10% + 4-bit, 10 rounds": FedConfig(**{**BASE, "rounds": 10}, ratio=0.1, bits=4),
    "fine-tune: fp32 FedAvg": FedConfig(**BASE),
    "fine-tune: top-10% + 4-bit": FedConfig(**BASE, ratio=0.1, bits=4),
    "fp32 FedAvg, 20 rounds": FedConfig(**R20),
    "top-10% + 4-bit, 20 rounds": FedConfig(**R20, ratio=0.1, bits=4),
    "fp32 FedAvg, 30 rounds": FedConfig(**R30),
    "top-10% + 4-bit, 30 rounds": FedConfig(**R30, ratio=0.1, bits=4),
    **{name: FedConfig(**{**R20, "seed": s}, **kw) for s in (1, 2) for name, kw in (
        (f"fp32 FedAvg, 20 rounds, seed {s}", {}),
        (f"top-10% + 4-bit, 20 rounds, seed {s}", {"ratio": 0.1, "bits": 4}))},
}
# Training threads: one by default, so the runs share a 2-core machine politely (this
# benchmark times nothing).
TRAIN_THREADS = int(os.environ.get("NETPRESS_TRAIN_THREADS", "1"))
PRETRAIN = 5_000  # "fine-tune:" rows start from 1 central epoch on this many training images


def start_model(name: str, split):
    """The seeded initialisation, or for "fine-tune:" rows that model after one central
    epoch on the first PRETRAIN training images (what a server holds before the clients)."""
    import torch

    from netpress.data.loaders import ArrayLoader
    from netpress.train import fit

    torch.set_num_threads(TRAIN_THREADS)
    torch.manual_seed(0)
    model = build_model("lenet-300-100")
    if name.startswith("fine-tune:"):
        x, y = split.train
        fit(model, ArrayLoader(x[:PRETRAIN], y[:PRETRAIN], 64, shuffle=True), epochs=1,
            lr=1e-3, threads=TRAIN_THREADS)
    return model


def main(names: list[str]) -> None:
    split = fashion()
    central, _ = baseline("lenet-300-100", split)
    from netpress.context import Context

    test = Context(split).test_loader()
    central_acc = accuracy(central, test)
    rows = {r["name"]: r for r in (load_result("federated")["rows"]
                                   if (RESULTS / "federated.json").is_file() else [])}
    for name in names or list(RUNS):
        init = start_model(name, split)
        res = run_federated(init, split, RUNS[name], threads=TRAIN_THREADS)
        art = artifact_bytes(res.model, "lenet-300-100", example=split.test[0][:1])
        rows[name] = {"name": name, "config": RUNS[name].to_dict(),
                      "accuracy": accuracy(res.model, test), "val_accuracy": res.val_accuracy,
                      "bytes_up": res.bytes_up, "record_bytes_up": res.record_bytes_up,
                      "dense_bytes_up": res.dense_bytes_up, "shard_sizes": res.shard_sizes,
                      "central_baseline_accuracy": central_acc, "artifact_bytes": len(art),
                      "train_threads": TRAIN_THREADS, "seconds": res.seconds}
        print(name, {k: v for k, v in rows[name].items() if k != "config"}, flush=True)
        save_result("federated", {"rows": list(rows.values())})
    print("| updates | rounds | bytes sent (8 clients) | vs fp32 FedAvg | test acc | "
          "vs fp32 FedAvg | val vs fp32 FedAvg | vs central baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows.values():
        rounds = r["config"]["rounds"]
        kind = r["name"].startswith("fine-tune:")
        ref = next((q for q in rows.values() if q["config"]["rounds"] == rounds
                    and q["config"]["seed"] == r["config"]["seed"]
                    and q["config"]["bits"] == 32 and q["config"]["ratio"] == 1.0
                    and q["name"].startswith("fine-tune:") == kind), None)
        ratio = ref["bytes_up"] / r["bytes_up"] if ref else float("nan")
        d = (r["accuracy"] - ref["accuracy"]) * 100 if ref else float("nan")
        dv = (r["val_accuracy"][-1] - ref["val_accuracy"][-1]) * 100 if ref else float("nan")
        print(f"| {r['name']} | {rounds} | {r['bytes_up']:,} | {ratio:.1f}× fewer | "
              f"{r['accuracy'] * 100:.2f}% | {d:+.2f} pp | {dv:+.2f} pp | "
              f"{(r['accuracy'] - r['central_baseline_accuracy']) * 100:+.2f} pp |")


if __name__ == "__main__":
    main(sys.argv[1:])

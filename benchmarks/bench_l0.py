"""Training that compresses itself on Fashion-MNIST: L0 channel gates and group lasso on
lenet5-caffe, side by side with StructuredPrune (Torch-Pruning, l1) on the same baseline.

Reproduce (from the repository root):
    .venv/bin/python benchmarks/bench_l0.py [NAME ...]

Each row starts from the cached zoo baseline, trains with the regulariser (then, where
named, a Finetune stage) on the 55,000
training images and removes the closed channels/neurons for real; figures are test
accuracy against the baseline (same run) and the channels, parameters and safetensors
bytes left, and validation accuracy beside (the L0 row a user would keep is chosen on
validation: the most channels removed within 1 pp there). Writes
benchmarks/results/l0.json (rows merged by name). No timings.
"""

from __future__ import annotations

import copy
import sys

from common import RESULTS, THREADS, baseline, fashion, load_result, save_result

from netpress.config import apply
from netpress.context import Context
from netpress.evaluate.metrics import accuracy
from netpress.io import safetensors_bytes
from netpress.pipeline.steps import Finetune
from netpress.techniques.prune import StructuredPrune
from netpress.techniques.prune.structured import channel_counts
from netpress.techniques.regularize import GroupLasso, L0Regularize

EXPERIMENTS = {
    "l0-channels-lam1": L0Regularize(gates="channels", lam=1.0, epochs=3, lr=5e-4, gate_lr=0.05),
    "group-lasso-lam1.5": GroupLasso(lam=1.5, epochs=3, lr=1e-3),
    "structured-l1-50%": StructuredPrune(0.5, importance="l1", finetune_epochs=3, lr=5e-4),
    "l0-channels-lam4": L0Regularize(gates="channels", lam=4.0, epochs=3, lr=5e-4, gate_lr=0.05),
    "group-lasso-lam15": GroupLasso(lam=15.0, epochs=3, lr=1e-3),
    "l0-channels-lam2": L0Regularize(gates="channels", lam=2.0, epochs=3, lr=5e-4, gate_lr=0.05),
    "l0-channels-lam4+finetune2": (
        L0Regularize(gates="channels", lam=4.0, epochs=3, lr=5e-4, gate_lr=0.05),
        Finetune(epochs=2, lr=5e-4)),
    "group-lasso-lam4": GroupLasso(lam=4.0, epochs=3, lr=1e-3),
    "group-lasso-lam6": GroupLasso(lam=6.0, epochs=3, lr=1e-3),
    "group-lasso-lam4+finetune2": (GroupLasso(lam=4.0, epochs=3, lr=1e-3),
                                   Finetune(epochs=2, lr=5e-4)),
}


def run(name: str, cfg, model, split) -> dict:
    ctx = Context(split, threads=THREADS)
    base_acc = accuracy(model, ctx.test_loader())
    base_val = accuracy(model, ctx.val_loader())
    stages = cfg if isinstance(cfg, tuple) else (cfg,)
    out = copy.deepcopy(model)
    for stage in stages:
        out = apply(out, stage, ctx)
    before, after = channel_counts(model), channel_counts(out)
    inner = [k for k in before if k != "fc2"]  # the output layer is never cut
    kept = sum(after[k] for k in inner) / sum(before[k] for k in inner)
    acc = accuracy(out, ctx.test_loader())
    val = accuracy(out, ctx.val_loader())
    state = {k: v.contiguous() for k, v in out.state_dict().items()}
    return {"name": name, "model": "lenet5-caffe", "stages": [c.to_dict() for c in stages],
            "baseline_accuracy": base_acc, "accuracy": acc,
            "accuracy_drop_pp": (base_acc - acc) * 100, "baseline_val_accuracy": base_val,
            "val_accuracy": val, "val_drop_pp": (base_val - val) * 100, "channels": after,
            "baseline_channels": before, "channels_removed": 1 - kept,
            "params": sum(p.numel() for p in out.parameters()),
            "baseline_params": sum(p.numel() for p in model.parameters()),
            "size_bytes": len(safetensors_bytes(state, {})),
            "baseline_size_bytes": len(safetensors_bytes(
                {k: v.contiguous() for k, v in model.state_dict().items()}, {}))}


def main(names: list[str]) -> None:
    split = fashion()
    model, _ = baseline("lenet5-caffe", split)
    rows = {r["name"]: r for r in (load_result("l0")["rows"] if (RESULTS / "l0.json").is_file()
                                   else [])}
    for name in names or list(EXPERIMENTS):
        rows[name] = run(name, EXPERIMENTS[name], model, split)
        r = rows[name]
        print(f"{name}: {r['accuracy'] * 100:.2f}% ({-r['accuracy_drop_pp']:+.2f} pp), "
              f"{r['channels_removed'] * 100:.1f}% channels removed, {r['channels']}", flush=True)
        save_result("l0", {"rows": list(rows.values())})
    # the setting a user would keep, chosen on validation only: the most channels removed
    # by training (L0 rows) with the validation drop within 1 pp
    ok = [r for r in rows.values() if r["name"].startswith("l0-") and "val_drop_pp" in r
          and r["val_drop_pp"] <= 1.0]
    if ok:
        pick = max(ok, key=lambda r: (r["channels_removed"], -r["val_drop_pp"]))
        print(f"chosen on validation (L0, val drop <= 1 pp, most removed): {pick['name']}: "
              f"val {-pick['val_drop_pp']:+.2f} pp, test {-pick['accuracy_drop_pp']:+.2f} pp, "
              f"{pick['channels_removed'] * 100:.1f}% removed", flush=True)
        save_result("l0", {"rows": list(rows.values()), "chosen_on_validation": pick["name"]})
    print("| run | channels (conv1, conv2, fc1) | removed | params | bytes | test acc | vs baseline |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows.values():
        c = r["channels"]
        print(f"| {r['name']} | {c['conv1']}, {c['conv2']}, {c['fc1']} | "
              f"{r['channels_removed'] * 100:.1f}% | {r['params']:,} | {r['size_bytes']:,} | "
              f"{r['accuracy'] * 100:.2f}% | {-r['accuracy_drop_pp']:+.2f} pp |")


if __name__ == "__main__":
    main(sys.argv[1:])

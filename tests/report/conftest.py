"""Real run folders for the report tests, built once per session in a few seconds.

lenet-300-100 is trained on digits for 1 epoch, pruned to 80 % and weight-shared; every
file of docs/runs.md is written from real models and real measurements.
"""

import copy
import json
import shutil
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from netpress import api
from netpress.config import apply
from netpress.context import Context
from netpress.data.loaders import ArrayLoader
from netpress.encode.artifact import artifact_bytes, decode_artifact, model_from_artifact
from netpress.encode.inspect import inspect_bytes
from netpress.evaluate.metrics import mean_kl, per_class_accuracy, predict
from netpress.io import write_json
from netpress.profile.record import measure
from netpress.profile.timing import measure_many, torch_runner
from netpress.techniques.cluster.share import WeightShare
from netpress.techniques.prune.magnitude import MagnitudePrune
from netpress.techniques.prune.sensitivity import sensitivity_sweep

SPEC = "lenet-300-100"


def _ece(logits, y, bins=15):
    p = F.softmax(logits, 1)
    conf, pred = p.max(1)
    correct = (pred == y).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += float(sel.float().mean() * (conf[sel].mean() - correct[sel].mean()).abs())
    return ece


def _acc(model, x, y):
    return float((predict(model, ArrayLoader(x, y, batch_size=1000))[0].argmax(1) == y).float().mean())


def _fgsm(model, x, y, eps):
    model.eval()
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y).backward()
    return (x + eps * x.grad.sign()).detach()


def _behaviour(model, base, split):
    x, y = split.test
    loader = ArrayLoader(x, y, batch_size=1000)
    lg, _ = predict(model, loader)
    blg, _ = predict(base, loader)
    acc = per_class_accuracy(lg, y, split.num_classes)
    bacc = per_class_accuracy(blg, y, split.num_classes)
    drop = [(b - a) * 100 for a, b in zip(acc, bacc, strict=True)]
    worst = int(np.argmax(drop))
    g = torch.Generator().manual_seed(0)
    noise = []
    for sigma in (0.1, 0.5):
        xn = x + sigma * torch.randn(x.shape, generator=g)
        noise.append({"sigma": sigma, "accuracy": _acc(model, xn, y), "baseline_accuracy": _acc(base, xn, y)})
    fgsm = [{"eps": eps, "accuracy": _acc(model, _fgsm(model, x, y, eps), y),
             "baseline_accuracy": _acc(base, _fgsm(base, x, y, eps), y)} for eps in (0.05, 0.2)]
    names = list(split.class_names)
    return {"accuracy": float((lg.argmax(1) == y).float().mean()),
            "baseline_accuracy": float((blg.argmax(1) == y).float().mean()),
            "per_class": {"names": names, "accuracy": acc, "baseline": bacc, "drop_pp": drop},
            "max_class_drop_pp": drop[worst], "worst_class": names[worst],
            "ece": _ece(lg, y), "baseline_ece": _ece(blg, y), "noise": noise, "fgsm": fgsm,
            "agreement": float((lg.argmax(1) == blg.argmax(1)).float().mean()),
            "kl": mean_kl(lg, blg)}


def _histograms(base, model):
    after = dict(model.named_parameters())
    out = {}
    for name, w in base.named_parameters():
        if not name.endswith("weight"):
            continue
        a, b = after[name].detach().numpy().ravel(), w.detach().numpy().ravel()
        edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=40)
        out[name] = {"edges": edges.tolist(), "before": np.histogram(b, edges)[0].tolist(),
                     "after": np.histogram(a, edges)[0].tolist()}
    return {"layers": out}


def _variant(base, ctx, stages, split):
    """Apply ``stages`` to a copy of ``base``; real val/test accuracy, bytes and latency."""
    m = copy.deepcopy(base)
    for cfg in stages:
        m = apply(m, cfg, ctx)
    data = artifact_bytes(m, SPEC)
    loaded = model_from_artifact(*decode_artifact(data))
    lat = measure_many({"m": torch_runner(loaded)}, split.test[0][:1], batch_n=32, threads=1,
                       rounds=1, batch1_calls=10, batchn_calls=2)["m"]
    return {"val": ctx.evaluate(loaded), "test": _acc(loaded, *split.test), "size": len(data),
            "latency": lat["batch1_p50"], "model": m}


@pytest.fixture(scope="session")
def built(tmp_path_factory, digits):
    split = digits
    torch.manual_seed(0)
    base, _ = api.train(SPEC, split, epochs=1, seed=0, threads=1)
    base.eval()
    ctx = Context(split, seed=0, threads=1)
    base_val = ctx.evaluate(base)
    params = sum(p.numel() for p in base.parameters())
    d = tmp_path_factory.mktemp("run")

    recipe = {"name": "tiny", "stages": [MagnitudePrune(0.8).to_dict(), WeightShare(bits=4).to_dict()]}
    model, stages = copy.deepcopy(base), []
    for cfg, check in ((MagnitudePrune(0.8), 5.0), (WeightShare(bits=4), None)):
        t0 = time.perf_counter()
        model = apply(model, cfg, ctx)
        val = ctx.evaluate(model)
        chk = None if check is None else {"max_drop_pp": check, "passed": (base_val - val) * 100 <= check}
        stages.append({"technique": type(cfg).__name__, "config": cfg.to_dict(),
                       "seconds": time.perf_counter() - t0, "val_accuracy": val, "check": chk})
    data = artifact_bytes(model, SPEC, recipe=recipe)
    (d / "model.netpress").write_bytes(data)
    loaded = model_from_artifact(*decode_artifact(data))
    rec = measure(loaded, split, SPEC, baseline=base, size_bytes=len(data),
                  baseline_size_bytes=4 * params, threads=1, rounds=1, batch_n=64)
    info = inspect_bytes(data)
    rec.update({"stages": stages, "header_bytes": info["header_bytes"],
                "padding_bytes": info["padding_bytes"],
                "artifact_layers": [{k: v for k, v in r.items() if k != "streams"}
                                    for r in info["tensors"]],
                "streams": [dict(s, tensor=r["name"]) for r in info["tensors"]
                            for s in r.get("streams", [])]})
    run = {"version": 1, "kind": "compress", "model": SPEC, "weights": "base.safetensors",
           "data": "digits", "seed": 0, "threads": 1, "status": "done", "recipe": recipe,
           "baseline_val_accuracy": base_val, "stages": stages}
    sens = sensitivity_sweep(base, ctx, sparsities=(0.0, 0.5, 0.9))
    write_json(d / "run.json", run)
    write_json(d / "record.json", rec)
    write_json(d / "behaviour.json", _behaviour(loaded, base, split))
    write_json(d / "sensitivity.json", {"kind": sens.kind, "sparsities": sens.sparsities,
                                        "baseline": sens.baseline_accuracy, "layers": sens.accuracy})
    write_json(d / "histograms.json", _histograms(base, loaded))

    variants = {"p50": [MagnitudePrune(0.5)], "p90": [MagnitudePrune(0.9)], "ws3": [WeightShare(bits=3)],
                "p90ws4": [MagnitudePrune(0.9), WeightShare(bits=4)]}
    res = {k: _variant(base, ctx, v, split) for k, v in variants.items()}
    base_test = rec["baseline_accuracy"]
    rows = []
    for key, tech, settings in (("p90", "MagnitudePrune", {"sparsity": 0.9}),
                                ("ws3", "WeightShare", {"bits": 3})):
        r = res[key]
        rows.append({"technique": tech, "settings": settings, "size_bytes": r["size"],
                     "compression_ratio": 4 * params / r["size"], "accuracy": r["test"],
                     "accuracy_drop_pp": (base_test - r["test"]) * 100, "latency_ms": r["latency"]})
    write_json(d / "compare.json", {"model": SPEC, "data": "digits", "rows": rows})

    s = tmp_path_factory.mktemp("search")
    # budgets that the 3-bit shared model meets (whatever its exact numbers), the rest not
    ws3 = res["ws3"]
    budgets = {"max_acc_drop": round(max(0.5, (base_val - ws3["val"]) * 100 + 0.5), 2),
               "max_size_kb": ws3["size"] // 1024 + 10}
    trials = []
    for i, (key, stgs) in enumerate(variants.items()):
        r = res[key]
        drop = (base_val - r["val"]) * 100
        trials.append({"number": i, "params": {"variant": key}, "recipe": {"name": key,
                       "stages": [c.to_dict() for c in stgs]}, "val_accuracy": r["val"],
                       "accuracy_drop_pp": drop, "size_bytes": r["size"], "latency_ms": r["latency"],
                       "feasible": drop <= budgets["max_acc_drop"]
                       and r["size"] <= budgets["max_size_kb"] * 1024, "seconds": 0.1})
    from netpress.report.points import pareto_indices

    front = set(pareto_indices([t["size_bytes"] for t in trials], [t["val_accuracy"] for t in trials]))
    for i, t in enumerate(trials):
        t["pareto"] = i in front
    feas = [t for t in trials if t["feasible"]]
    best = min(feas, key=lambda t: t["size_bytes"])["number"] if feas else None
    write_json(s / "trials.json", {"objectives": ["val_accuracy", "size_bytes", "latency_ms"],
                                   "budgets": budgets, "trials": trials, "best": best})
    write_json(s / "run.json", {**run, "kind": "search", "recipe": None, "stages": []})
    return {"run": d, "search": s, "budgets": budgets, "record": rec, "params": params,
            "trials": trials, "best": best, "base_val": base_val, "compare_rows": rows}


@pytest.fixture
def run_copy(built, tmp_path):
    """A fresh copy of the compress run folder that a test may change."""
    dst = tmp_path / "run"
    shutil.copytree(built["run"], dst)
    return dst


def load(path):
    return json.loads(path.read_text())

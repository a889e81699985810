"""Weight-only quantization on Fashion-MNIST and a tiny random BertModel: RTN vs GPTQ at
8/4/3/2 bits (group 128), packed file bytes, 2-bit QAT (LSQ and STE), mixed precision
under a 4-bit budget vs uniform 4-bit.

Reproduce: ``.venv/bin/python
benchmarks/bench_quant_weight.py [part ...]`` with parts ``nets qat mixed bert`` (default
all). Accuracies are on the 10,000 test images; nothing is tuned on them.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path

import torch
from common import baseline, fashion, load_result, save_result

from netpress import api
from netpress.context import Context
from netpress.io import file_size, save_weights
from netpress.targets import Targets
from netpress.techniques.quantize.mixed import allocate_and_quantize, plot_sensitivity
from netpress.techniques.quantize.qat import Qat, qat
from netpress.techniques.quantize.storage import save_packed, weight_bits
from netpress.techniques.quantize.weight_only import (
    WeightOnly,
    layer_hessian,
    layer_output_error,
    quantize_weights,
)

NETS = ("lenet-300-100", "lenet5-caffe")


def _bytes(model) -> int:
    with tempfile.TemporaryDirectory() as d:
        return file_size(save_packed(model, Path(d) / "q.safetensors"))


def nets(split, out: dict) -> None:
    for spec in NETS:
        model, _ = baseline(spec, split)
        ctx = Context(split, threads=1)
        calib = list(ctx.calib_loader())
        with tempfile.TemporaryDirectory() as d:
            fp_bytes = file_size(save_weights(model, Path(d) / "fp.safetensors"))
        rows = []
        for bits in (8, 4, 3, 2):
            for method in ("rtn", "gptq"):
                q = quantize_weights(copy.deepcopy(model), WeightOnly(bits, 128, method), calib)
                rows.append({"bits": bits, "method": method,
                             "test_accuracy": api.evaluate(q, split).accuracy,
                             "file_bytes": _bytes(q), "weight_bits": weight_bits(q)})
                print(spec, rows[-1])
        out[spec] = {"fp32_test_accuracy": api.evaluate(model, split).accuracy,
                     "fp32_file_bytes": fp_bytes, "rows": rows}


def qat_2bit(split, out: dict, epochs: int = 2) -> None:
    spec = "lenet-300-100"
    model, _ = baseline(spec, split)
    # training runs on 1 thread: on this shared, oversubscribed machine a 2-thread torch
    # step waited ~50x longer at OpenMP barriers; results do not depend on it (no timing)
    ctx = Context(split, threads=1)
    calib = list(ctx.calib_loader())
    res = {"fp32_test_accuracy": api.evaluate(model, split).accuracy, "epochs": epochs}
    ptq = quantize_weights(copy.deepcopy(model), WeightOnly(2, 128, "gptq"), calib)
    res["ptq_gptq_test_accuracy"] = api.evaluate(ptq, split).accuracy
    for method, lr in (("lsq", 3e-4), ("ste", 3e-4)):
        q = copy.deepcopy(ptq)
        qat(q, Qat(epochs, lr, method), ctx)
        res[f"qat_{method}_test_accuracy"] = api.evaluate(q, split).accuracy
        res[f"qat_{method}_lr"] = lr
        res[f"qat_{method}_file_bytes"] = _bytes(q)
        print(method, res)
    out[spec] = res


# MIXED_NETS=a,b limits the mixed part to those models (other models' rows are kept)
MIXED_NETS = tuple(filter(None, os.environ.get("MIXED_NETS", "").split(","))) or (
    *NETS, "resnet-small")


def mixed(split, out: dict, plots: Path) -> None:
    """Uniform 4-bit vs mixed precision under a 4-bit average, for RTN and GPTQ, per
    channel and group 128. Keys: ``out[spec]["<method>-g<G>"]``."""
    for spec in MIXED_NETS:
        model, _ = baseline(spec, split)
        ctx = Context(split, threads=1)
        calib = list(ctx.calib_loader())
        res = {"baseline_test_accuracy": api.evaluate(model, split).accuracy}
        for method in ("gptq", "rtn"):
            for gs in (128, 0):
                cfg = WeightOnly(4, gs, method)
                uni = quantize_weights(copy.deepcopy(model), cfg, calib)
                mix = copy.deepcopy(model)
                table = allocate_and_quantize(mix, cfg, ctx, 4.0)
                plot_sensitivity(table, plots / f"quant_mixed_{spec}_{method}_g{gs}.png")
                row = {"uniform4_test_accuracy": api.evaluate(uni, split).accuracy,
                       "uniform4_val_accuracy": ctx.evaluate(uni),
                       "uniform4_file_bytes": _bytes(uni),
                       "mixed_test_accuracy": api.evaluate(mix, split).accuracy,
                       "mixed_val_accuracy": ctx.evaluate(mix),
                       "mixed_file_bytes": _bytes(mix),
                       "mixed_average_bits": table["average_bits"],
                       "layers": [{"name": r["name"], "params": r["params"], "bits": r["bits"]}
                                  for r in table["layers"]]}
                res[f"{method}-g{gs}"] = row
                print(spec, method, gs, {k: v for k, v in row.items() if k != "layers"},
                      flush=True)
        out[spec] = res


def bert(out: dict) -> None:
    import transformers

    cfg = transformers.BertConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=4,
                                  num_attention_heads=4, intermediate_size=1024,
                                  max_position_embeddings=128)
    torch.manual_seed(0)
    model = transformers.BertModel(cfg).eval()
    g = torch.Generator().manual_seed(1)
    calib = [{"input_ids": torch.randint(0, 1000, (8, 64), generator=g)} for _ in range(8)]
    held = [{"input_ids": torch.randint(0, 1000, (8, 64), generator=g)} for _ in range(2)]
    rows = []
    names = [n for n, _ in Targets(types=("Linear",)).select(model)]
    for name in names[:6] + names[-6:]:
        mod = dict(model.named_modules())[name]
        xs = []
        h = mod.register_forward_pre_hook(lambda m, a, xs=xs: xs.append(a[0].detach()))
        with torch.no_grad():
            for b in held:
                model(**b)
        h.remove()
        x = torch.cat([t.reshape(-1, t.shape[-1]) for t in xs])
        row = {"layer": name}
        hess = layer_hessian(model, mod, calib)
        from netpress.techniques.quantize.gptq import gptq, rtn

        w = mod.weight.detach()
        for method in ("rtn", "gptq"):
            q = rtn(w, 4, False, 128)[0] if method == "rtn" else gptq(w, hess, 4, False, 128)[0]
            row[f"{method}_rel_output_error"] = layer_output_error(mod, w, q, x)
        rows.append(row)
        print(row)
    full = {}
    for method in ("rtn", "gptq"):
        m = copy.deepcopy(model)
        with torch.no_grad():
            ref = [model(**b).last_hidden_state for b in held]
        quantize_weights(m, WeightOnly(4, 128, method, targets=Targets(types=("Linear",))), calib)
        with torch.no_grad():
            got = [m(**b).last_hidden_state for b in held]
        err = sum(float((a - b).norm() ** 2) for a, b in zip(ref, got, strict=True)) / sum(
            float(a.norm() ** 2) for a in ref)
        full[method] = {"rel_output_error": err ** 0.5, "file_bytes": _bytes(m)}
    out["bert-tiny-random"] = {"config": "hidden 256, 4 layers, 4 heads, ffn 1024, seq 64",
                               "layers": rows, "whole_model": full}


def main(parts: list[str]) -> None:
    # nothing here is timed: 1 thread avoids OpenMP barrier stalls on the shared machine
    torch.set_num_threads(1)
    split = fashion()
    try:
        res = load_result("quant_weight")
    except FileNotFoundError:
        res = {}
    res.pop("machine", None)
    plots = Path(__file__).resolve().parent / "results"
    for part in parts:
        res.setdefault(part, {})
        if part == "nets":
            nets(split, res[part])
        elif part == "qat":
            qat_2bit(split, res[part])
        elif part == "mixed":
            mixed(split, res[part], plots)
        elif part == "bert":
            bert(res[part])
        save_result("quant_weight", res)


if __name__ == "__main__":
    main(sys.argv[1:] or ["nets", "qat", "mixed", "bert"])

"""``quantize_and_measure``: quantize with a scheme, build every deployed form, measure them
all in one run, keep the fastest that meets the accuracy tolerance, write the out folder.

Schemes: ``int8-static`` (calibrated weights and activations), ``int8-dynamic`` (int8
weights, activations at run time), ``int8`` (both families), and weight-only
``w{8,4,3,2}[-rtn|-gptq]`` (default GPTQ; 4- and 8-bit grids also run in ONNX Runtime as
``onnxruntime-w4-nbits``, the codes in MatMulNBits kernels, beside ``onnxruntime-fp32``;
the packed torch form stays the chosen one). The record is DESIGN.md's, plus ``forms`` (each
form's test and validation accuracy, file bytes and latency), ``chosen_form`` and
``warnings`` — e.g. when an int8 form is slower than fp32 torch on this machine, or when
a form could not be built for this model (torch FX static int8 cannot trace Hugging Face
transformers; the static int8 forms then run in ONNX Runtime and OpenVINO only).

Text models work the same way as image models: the task gives dicts of token tensors,
calibration runs through the task's calib batches, ONNX files take named inputs with
dynamic batch and sequence axes, and scores are the task's (cosine to the reference for
sentence encoders, accuracy for classifiers).
"""

from __future__ import annotations

import contextlib
import copy
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ...context import Context
from ...errors import ConfigError, ModelError
from ...io import file_size, write_json
from ...profile.record import measure
from ...targets import Targets
from .bnfold import fold_batchnorm
from .forms import BACKENDS, Form, build_forms, choose, nbits_forms, wanted
from .modules import baked_copy
from .ptq import DynamicInt8, StaticInt8, apply_static_int8, dynamic_int8, fx_static_int8
from .qat import Qat, qat
from .storage import save_packed, weight_bits
from .weight_only import WeightOnly, gptq_batches, gptq_or_rtn, quantize_weights

_WEIGHT_ONLY = re.compile(r"^w([2-8])(?:-(rtn|gptq))?$")
SCHEMES = ("int8-static", "int8-dynamic", "int8", "w8", "w4-rtn", "w4-gptq", "w3-gptq",
           "w2-gptq")


def parse_scheme(scheme: str) -> tuple[str, int, str]:
    """``(family, bits, method)`` of a scheme name.

    Example:
        >>> parse_scheme("w4-rtn"), parse_scheme("int8-static")
        (('weight', 4, 'rtn'), ('int8', 8, 'static'))
    """
    if scheme in ("int8-static", "int8-dynamic", "int8"):
        return "int8", 8, scheme.removeprefix("int8-") if "-" in scheme else "both"
    m = _WEIGHT_ONLY.match(scheme)
    if not m:
        raise ConfigError(f"unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)} "
                          "(weight-only: w2..w8 with -rtn or -gptq)")
    return "weight", int(m.group(1)), m.group(2) or "gptq"


def _row(form: Form, lat: dict, task) -> dict:
    return {"name": form.name, "backend": form.backend, "precision": form.precision,
            "size_bytes": form.size_bytes,
            "val_accuracy": task.score_outputs(*task.runner_outputs(form.runner, "val")),
            "accuracy": task.score_outputs(*task.runner_outputs(form.runner, "test")),
            "latency_ms": {k: lat[k] for k in ("batch1_p50", "batch1_p95", "batchN_p50",
                                                "batch_n")}}


def _warnings(rows: list[dict]) -> list[str]:
    """int8 forms slower than fp32 torch, MatMulNBits forms slower than fp32 ONNX Runtime."""
    from ...profile.timing import passive_openmp_warning

    ort = next((r for r in rows if r["name"] == "onnxruntime-fp32"), None)
    passive = passive_openmp_warning()
    out = [passive] if passive else []
    for r in rows[1:]:
        if "int8" in r["precision"]:
            ref, ref_name = rows[0], "fp32 torch"
        elif r["name"].endswith("-nbits") and ort is not None:
            ref, ref_name = ort, "fp32 ONNX Runtime"
        else:
            continue
        lat, base = r["latency_ms"], ref["latency_ms"]
        for key, label in (("batch1_p50", "batch 1"), ("batchN_p50", f"batch {lat['batch_n']}")):
            if lat[key] > base[key]:
                out.append(f"{r['name']} is SLOWER than {ref_name} at {label} on this machine "
                           f"({lat[key]:.3f} ms vs {base[key]:.3f} ms)")
    return out


def quantize_and_measure(
    fp32: nn.Module,
    data,
    name: str,
    scheme: str,
    out: str | Path | None = None,
    backend: str = "auto",
    group_size: int = 128,
    embedding_bits: int = 0,
    act_order: bool = False,
    clip: bool = False,
    observer: str = "minmax",
    qat_epochs: int = 0,
    qat_method: str = "lsq",
    qat_lr: float = 1e-4,
    bits_budget: float | None = None,
    keep: tuple[str, ...] = (),
    tolerance_pp: float = 0.5,
    select_at: str = "batchN",
    threads: int = 2,
    seed: int = 0,
    rounds: int = 5,
    timing_lock: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    say: Callable[[str], None] = lambda s: None,
) -> dict:
    """Quantize ``fp32`` with ``scheme``, measure every deployed form, write ``out``.

    ``data`` is a Task (or a Split of images); accuracies are the task's score.

    Example:
        >>> rec = quantize_and_measure(model, split, "lenet-300-100", "int8-dynamic")  # doctest: +SKIP
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if select_at not in ("batch1", "batchN"):
        raise ConfigError("select_at must be batch1 or batchN")
    family, bits, method = parse_scheme(scheme)
    ctx = Context(data, seed=seed, threads=threads)
    task = ctx.task
    fp32 = fp32.eval()
    example = task.example_inputs(1, "test")
    static = dynamic = fx_static = None
    mixed = picked = None
    notes: list[str] = []  # forms that could not be built here, and why
    if family == "int8":
        if method in ("static", "both"):
            say(f"calibrating static int8 ({observer})")
            cfg = StaticInt8(method=observer, targets=Targets(ignore=keep))
            static = apply_static_int8(copy.deepcopy(fp32), cfg, ctx)
            if qat_epochs:
                qat(static, Qat(qat_epochs, qat_lr, "ste"), ctx)
            if wanted(backend, "torch"):
                say("calibrating torch x86 static int8 (FX)")
                try:
                    fx_static = fx_static_int8(fp32, ctx.calib_loader())
                except ModelError as e:
                    notes.append(f"torch-int8-static skipped: {e}")
                    say(notes[-1])
        if method in ("dynamic", "both"):
            dynamic = dynamic_int8(fp32, DynamicInt8(Targets(types=("Linear",), ignore=keep)))
        # counts (params, MACs, bits per layer) come from a float copy marked with the
        # bits each layer is stored at: quantizer children would hide the layers
        qmodel = copy.deepcopy(fp32)
        if static is not None:
            fold_batchnorm(qmodel)
        types = ("Linear", "Conv2d") if static is not None else ("Linear",)
        for _, m in Targets(types=types, ignore=keep).select(qmodel):
            m.netpress_bits = 8
    else:
        targets = Targets(ignore=keep)
        wcfg = WeightOnly(bits=bits, group_size=group_size, method=method, targets=targets,
                          embedding_bits=embedding_bits, act_order=act_order, clip=clip)
        qmodel = copy.deepcopy(fp32)
        if bits_budget is not None:
            from .mixed import allocate_and_quantize

            say(f"mixed precision under {bits_budget} average bits")
            mixed = allocate_and_quantize(qmodel, wcfg, ctx, bits_budget)
        else:
            say(f"weight-only {bits}-bit {method}")
            if method == "gptq":
                qmodel, picked = gptq_or_rtn(fp32, wcfg, gptq_batches(ctx), ctx.evaluate)
                if picked["kept"] == "rtn":
                    notes.append(f"GPTQ scored {picked['gptq_val']:.4f} on validation, below "
                                 f"RTN's {picked['rtn_val']:.4f}: kept RTN (same file format)")
                    say(notes[-1])
                    method = "rtn"
            else:
                quantize_weights(qmodel, wcfg, ())
        if qat_epochs:
            qat(qmodel, Qat(qat_epochs, qat_lr, qat_method), ctx)
    tmp = Path(tempfile.mkdtemp(prefix="netpress-quant-"))
    try:
        # weight-only forms run in torch (float weights rebuilt from packed codes) and, for
        # 4/8-bit grids, in ONNX Runtime's MatMulNBits (with its fp32 form to compare)
        forms = build_forms(fp32, static, dynamic, example, tmp,
                            "torch" if family == "weight" else backend, threads, say,
                            fx_static=fx_static)
        if family == "weight":
            p = save_packed(qmodel, tmp / "quantized.safetensors", {"model": name})
            wbits = weight_bits(qmodel)
            from ...profile.timing import torch_runner

            # in ONNX Runtime: the codes themselves in MatMulNBits kernels, next to fp32
            ort = (nbits_forms(fp32, qmodel, example, tmp, threads, notes, say)
                   if wanted(backend, "onnxruntime") else [])
            # deployed as float weights rebuilt from the packed codes at load time
            qmodel = baked_copy(qmodel)
            forms.append(Form(f"torch-w{bits}-{method}", "torch", f"w{bits}",
                              torch_runner(qmodel), p, file_size(p)))
            forms.extend(ort)
        if all(f.precision == "fp32" for f in forms):  # e.g. int8-dynamic on openvino
            why = f" ({'; '.join(notes)})" if notes else ""
            raise ConfigError(f"backend {backend!r} gives no quantized form for {scheme}{why}; "
                              "use --backend auto")
        say("timing every form (fp32 and quantized) in one run")
        with timing_lock():
            rec = measure(qmodel, task, name, baseline=fp32, runner=forms[1].runner,
                          size_bytes=forms[1].size_bytes, baseline_size_bytes=forms[0].size_bytes,
                          extra_runners={f.name: f.runner for f in forms[2:]},
                          threads=threads, rounds=rounds)
        by = rec.pop("latency_ms_by_form", None) or {"model": rec["latency_ms"],
                                                     "baseline": rec["baseline_latency_ms"]}
        lat = {forms[0].name: by["baseline"], forms[1].name: by["model"],
               **{f.name: by[f.name] for f in forms[2:]}}
        say("evaluating every form")
        rows = [_row(f, lat[f.name], task) for f in forms]
        if family == "weight":  # the point is the smaller file: keep the packed torch form
            chosen = rows[1]
        else:
            chosen = choose(rows, tolerance_pp, f"{select_at}_p50")
        form = next(f for f in forms if f.name == chosen["name"])
        base = rows[0]
        rec.update({
            "scheme": scheme, "backend": backend, "select_at": select_at,
            "tolerance_pp": tolerance_pp, "chosen_form": chosen["name"],
            "accuracy": chosen["accuracy"], "baseline_accuracy": base["accuracy"],
            "accuracy_drop_pp": round((base["accuracy"] - chosen["accuracy"]) * 100, 4),
            "size_bytes": chosen["size_bytes"], "baseline_size_bytes": base["size_bytes"],
            "compression_ratio": base["size_bytes"] / chosen["size_bytes"],
            "latency_ms": chosen["latency_ms"], "baseline_latency_ms": base["latency_ms"],
            "forms": rows, "warnings": notes + _warnings(rows),
            "keep_float": list(keep), "observer": observer if static is not None else None,
            "qat_epochs": qat_epochs, "qat_method": qat_method if qat_epochs else None,
        })
        if family == "weight":
            rec["weight_bits"] = wbits
            rec["group_size"] = group_size
            rec["embedding_bits"] = embedding_bits
            rec["act_order"] = act_order
            rec["clip"] = clip
            if picked is not None:
                rec["weight_method"] = picked
        if mixed is not None:
            rec["mixed_precision"] = mixed
        drop = (rows[0]["val_accuracy"] - chosen["val_accuracy"]) * 100
        if family == "weight" and drop > tolerance_pp:
            rec["warnings"].append(f"{chosen['name']} loses {drop:.2f} pp of validation "
                                   f"accuracy, more than the {tolerance_pp} pp tolerance")
        if chosen["name"] == "torch-fp32":
            rec["warnings"].append("no quantized form met the accuracy tolerance and beat fp32 "
                                   "torch; the chosen form is fp32")
        if out is not None:
            rec["out_files"] = _write_out(Path(out), form, qmodel, static, dynamic, tmp, rec,
                                          family)
        return rec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_out(out: Path, form: Form, qmodel, static, dynamic, tmp: Path, rec: dict,
               family: str) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    dest = out / ("model.onnx" if form.path.suffix == ".onnx" else "model.safetensors")
    from ...io import write_bytes

    write_bytes(dest, form.path.read_bytes())
    files.append(dest.name)
    if family == "weight":
        src = tmp / "quantized.safetensors"
    elif static is not None:
        from ...io import save_weights

        src = save_weights(static, tmp / "static-fakequant.safetensors")
    else:
        src = tmp / "torch-int8-dynamic.safetensors"
    if src.is_file() and src != form.path:
        write_bytes(out / "quantized.safetensors", src.read_bytes())
        files.append("quantized.safetensors")
    if family == "weight" and (tmp / "nbits.onnx").is_file():  # deployable in ONNX Runtime
        write_bytes(out / "model-nbits.onnx", (tmp / "nbits.onnx").read_bytes())
        files.append("model-nbits.onnx")
    files.append("record.json")
    write_json(out / "record.json", {**rec, "out_files": files})
    return files


__all__ = ["SCHEMES", "parse_scheme", "quantize_and_measure"]

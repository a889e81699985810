"""Deployed forms of a model, fp32 and int8, on every backend installed here.

A ``Form`` is something that really runs: a torch module, an ONNX Runtime session or an
OpenVINO compiled model, with the bytes of the file it deploys from. int8 is never
assumed to be faster: every form is timed by ``netpress.profile.measure`` in one run.
Every runner takes the task's inputs as they are — one image tensor, or a dict of token
tensors for Hugging Face models — so the same forms serve images and text.

ONNX Runtime's own tooling (``onnxruntime.quantization.quantize_dynamic``) makes the
dynamic-int8 ONNX form; the static int8 ONNX form is our QDQ export, whose scales come
from netpress's observers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...batches import Inputs
from ...errors import ModelError
from ...export.int8 import ort_dynamic
from ...export.onnx import export_onnx
from ...export.runtimes import (
    Runner,
    openvino_available,
    openvino_runner,
    ort_runner,
)
from ...io import file_size, save_weights
from ...profile.timing import torch_runner

BACKENDS = ("auto", "onnxruntime", "openvino", "torch")


@dataclass
class Form:
    """One deployed form: name, backend, precision, the runner and its file."""

    name: str
    backend: str
    precision: str
    runner: Runner
    path: Path
    size_bytes: int


def _torch_int8_state(qmodel: nn.Module) -> dict[str, torch.Tensor]:
    """int8 codes, per-channel scales and float biases of a torch int8 model (dynamic or
    FX static; quantized tensors cannot go to safetensors as they are)."""
    state = {}
    for name, m in qmodel.named_modules():
        if callable(getattr(m, "weight", None)) and callable(getattr(m, "bias", None)):
            w, b = m.weight(), m.bias()
            state[f"{name}.weight.int8"] = w.int_repr()
            if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                state[f"{name}.weight.scale"] = w.q_per_channel_scales().float()
            else:
                state[f"{name}.weight.scale"] = torch.tensor([w.q_scale()], dtype=torch.float32)
            if b is not None:
                state[f"{name}.bias"] = b.detach()
        elif not list(m.children()):
            for k, v in m.state_dict().items():
                if isinstance(v, torch.Tensor) and not v.is_quantized:
                    state[f"{name}.{k}" if name else k] = v
    return state


def wanted(backend: str, name: str) -> bool:
    """Whether ``--backend`` asks for the backend ``name`` (``auto`` asks for all)."""
    return backend in ("auto", name)


def build_forms(
    fp32: nn.Module,
    static: nn.Module | None,
    dynamic: nn.Module | None,
    example: Inputs,
    workdir: Path,
    backend: str = "auto",
    threads: int = 2,
    say: Callable[[str], None] = lambda s: None,
    fx_static: nn.Module | None = None,
) -> list[Form]:
    """Every deployed form the backend choice and installed extras allow. ``static`` is a
    calibrated fake-quant model (exported as QDQ), ``dynamic`` a torch dynamic-int8 model,
    ``fx_static`` a torch x86 static-int8 model. ``example`` is one input of the task (a
    tensor or a dict of tensors; ONNX files get dynamic batch and sequence axes).
    The torch fp32 form always comes first (it is the baseline).

    Example:
        >>> forms = build_forms(fp, q, dq, x[:1], Path("out"))  # doctest: +SKIP
    """
    workdir.mkdir(parents=True, exist_ok=True)
    fp_path = save_weights(fp32, workdir / "fp32.safetensors")
    forms = [Form("torch-fp32", "torch", "fp32", torch_runner(fp32), fp_path,
                  file_size(fp_path))]
    if fx_static is not None and wanted(backend, "torch"):
        p = save_weights(_torch_int8_state(fx_static), workdir / "torch-int8-static.safetensors")
        forms.append(Form("torch-int8-static", "torch", "int8-static", torch_runner(fx_static),
                          p, file_size(p)))
    if dynamic is not None and wanted(backend, "torch"):
        p = save_weights(_torch_int8_state(dynamic), workdir / "torch-int8-dynamic.safetensors")
        forms.append(Form("torch-int8-dynamic", "torch", "int8-dynamic", torch_runner(dynamic),
                          p, file_size(p)))
    onnx_wanted = wanted(backend, "onnxruntime") or wanted(backend, "openvino")
    if not onnx_wanted:
        return forms
    say("exporting ONNX")
    fp_onnx = export_onnx(fp32, example, workdir / "fp32.onnx")
    q_onnx = export_onnx(static, example, workdir / "int8-static.onnx") if static else None
    if wanted(backend, "onnxruntime"):
        forms.append(Form("onnxruntime-fp32", "onnxruntime", "fp32", ort_runner(fp_onnx, threads),
                          fp_onnx, file_size(fp_onnx)))
        if q_onnx is not None:
            forms.append(Form("onnxruntime-int8-static", "onnxruntime", "int8-static",
                              ort_runner(q_onnx, threads), q_onnx, file_size(q_onnx)))
        if dynamic is not None:
            d_onnx = ort_dynamic(fp_onnx, workdir / "int8-dynamic.onnx")
            forms.append(Form("onnxruntime-int8-dynamic", "onnxruntime", "int8-dynamic",
                              ort_runner(d_onnx, threads), d_onnx, file_size(d_onnx)))
    if wanted(backend, "openvino"):
        if not openvino_available():
            if backend == "openvino":
                openvino_runner(fp_onnx)  # raises MissingExtra with the install hint
            say("OpenVINO is not installed (extra 'openvino'); skipping its forms")
        else:
            forms.append(Form("openvino-fp32", "openvino", "fp32",
                              openvino_runner(fp_onnx, threads), fp_onnx, file_size(fp_onnx)))
            if q_onnx is not None:
                forms.append(Form("openvino-int8-static", "openvino", "int8-static",
                                  openvino_runner(q_onnx, threads), q_onnx, file_size(q_onnx)))
    return forms


def nbits_forms(
    fp32: nn.Module,
    qmodel: nn.Module,
    example: Inputs,
    workdir: Path,
    threads: int = 2,
    notes: list[str] | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> list[Form]:
    """ONNX Runtime forms of a weight-only model ``qmodel`` (its ``FixedQuant`` layers
    still on): ``onnxruntime-fp32`` of ``fp32`` and ``onnxruntime-w{bits}-nbits``, its
    4/8-bit Linears as MatMulNBits with netpress's codes (``export.nbits``, float32
    compute: the torch output). A model it cannot take (3-bit layers, groups not a
    multiple of 16…) gets a line in ``notes`` and no forms.

    Example:
        >>> forms = nbits_forms(fp, w4, x[:1], Path("out"))  # doctest: +SKIP
    """
    from ...export.nbits import export_nbits, nbits_layers

    notes = [] if notes is None else notes
    try:
        bits = sorted({lay.bits for lay in nbits_layers(qmodel).values()})
        if not bits:
            raise ModelError("no Linear carries a 4- or 8-bit grid")
        name = f"onnxruntime-w{'/'.join(map(str, bits))}-nbits"
        say("exporting ONNX (fp32, and MatMulNBits with the quantized codes)")
        fp_onnx = export_onnx(fp32, example, workdir / "fp32.onnx")
        q_onnx = export_nbits(qmodel, example, workdir / "nbits.onnx")
    except ModelError as e:
        notes.append(f"onnxruntime-nbits skipped: {e}")
        say(notes[-1])
        return []
    return [Form("onnxruntime-fp32", "onnxruntime", "fp32", ort_runner(fp_onnx, threads),
                 fp_onnx, file_size(fp_onnx)),
            Form(name, "onnxruntime", name.split("-")[1], ort_runner(q_onnx, threads),
                 q_onnx, file_size(q_onnx))]


def choose(rows: list[dict], tolerance_pp: float, at: str = "batchN_p50") -> dict:
    """The fastest form (by ``at`` latency) whose validation accuracy is within
    ``tolerance_pp`` of the torch fp32 form's; rows carry ``val_accuracy`` and ``latency_ms``.

    Example:
        >>> rows = [{"name": "a", "val_accuracy": .9, "latency_ms": {"batchN_p50": 2.}},
        ...         {"name": "b", "val_accuracy": .85, "latency_ms": {"batchN_p50": 1.}}]
        >>> choose(rows, 1.0)["name"]
        'a'
    """
    ref = rows[0]["val_accuracy"]
    ok = [r for r in rows if (ref - r["val_accuracy"]) * 100 <= tolerance_pp]
    return min(ok or rows[:1], key=lambda r: r["latency_ms"][at])

"""Export a torch model to ONNX, quietly and deterministically; fold QDQ weights to int8.

A fake-quant model from ``techniques.quantize.ptq`` exports as a QDQ graph: each weight
goes through QuantizeLinear → DequantizeLinear. ``fold_weight_quantizers`` replaces every
QuantizeLinear whose input is a constant by its int8 result, so the file stores int8
weights (a quarter of the float bytes) and ONNX Runtime sees the DQ → Conv/Gemm → Q
pattern it fuses into int8 kernels.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from ..errors import ModelError
from ..io import write_bytes


def _quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logger = logging.getLogger(name)
        old = logger.level
        logger.setLevel(logging.ERROR)
        stack.callback(logger.setLevel, old)
    return stack


def export_onnx_model(model: nn.Module, example: torch.Tensor, opset: int = 17) -> onnx.ModelProto:
    """Export ``model`` (eval mode) with a dynamic batch dimension; returns the proto.

    Example:
        >>> p = export_onnx_model(nn.Sequential(nn.Linear(4, 2)), torch.zeros(1, 4))
        >>> p.graph.input[0].type.tensor_type.shape.dim[0].dim_param != ""
        True
    """
    model.eval()
    # with no tensor requiring grad, fake-quant ops trace as their exportable variants
    grads = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        return _export(model, example, opset)
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)


def _export(model: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory(prefix="netpress-onnx-") as d, _quiet():
        path = os.path.join(d, "model.onnx")
        try:
            # the TorchScript exporter: torch.export cannot trace fake-quant ops with a
            # dynamic batch dimension in torch 2.13 (no meta kernel for the cachemask op)
            torch.onnx.export(model, (example,), path, dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        except Exception as e:  # the exporter raises many types; say which model failed
            raise ModelError(f"ONNX export failed for {type(model).__name__}: "
                             f"{str(e).splitlines()[0]}") from e
        return onnx.load(path)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def fold_weight_quantizers(proto: onnx.ModelProto) -> int:
    """Replace QuantizeLinear nodes with constant inputs by their int8/uint8 result, in
    place. Returns how many were folded.

    Example:
        >>> fold_weight_quantizers(onnx.ModelProto())
        0
    """
    g = proto.graph
    consts = _constants(g)
    folded, keep = 0, []
    new_inits = []
    for n in g.node:
        if n.op_type == "QuantizeLinear" and all(i in consts for i in n.input if i):
            x = consts[n.input[0]].astype(np.float32)
            scale = consts[n.input[1]].astype(np.float32)
            zp = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else np.uint8(0)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and scale.size > 1:
                shape = [1] * x.ndim
                shape[axis % x.ndim] = scale.size
                scale, zp_b = scale.reshape(shape), zp.reshape(shape)
            else:
                zp_b = zp
            info = np.iinfo(zp.dtype)
            q = np.clip(np.rint(x / scale) + zp_b.astype(np.int32), info.min, info.max)
            new_inits.append(numpy_helper.from_array(q.astype(zp.dtype), n.output[0]))
            folded += 1
        else:
            keep.append(n)
    if folded:
        del g.node[:]
        g.node.extend(keep)
        g.initializer.extend(new_inits)
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        unused = [i for i in g.initializer if i.name not in used]
        for i in unused:
            g.initializer.remove(i)
    return folded


def save_onnx(proto: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write an ONNX proto atomically (one file, no external data)."""
    return write_bytes(path, proto.SerializeToString())


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike,
                fold_qdq_weights: bool = True) -> Path:
    """Export ``model`` to ``path``; QDQ weights are folded to int8 initializers.

    Example:
        >>> export_onnx(nn.Sequential(nn.Linear(4, 2)), torch.zeros(1, 4), "m.onnx")  # doctest: +SKIP
    """
    proto = export_onnx_model(model, example)
    if fold_qdq_weights:
        fold_weight_quantizers(proto)
    onnx.checker.check_model(proto)
    return save_onnx(proto, path)

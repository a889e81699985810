"""Export a torch model to ONNX, quietly and deterministically; fold QDQ weights to int8.

A model takes one image tensor, or a dict of tensors (a Hugging Face wrapper's
``input_ids``, ``attention_mask``, ``token_type_ids``). The ONNX graph names its inputs
(``input`` for one tensor, else the dict's keys in the order of the model's ``forward``),
has a dynamic batch axis and, for dict (token) inputs, a dynamic sequence axis, and names
its output ``output``.

A fake-quant model from ``techniques.quantize.ptq`` exports as a QDQ graph: each weight
goes through QuantizeLinear → DequantizeLinear. ``fold_weight_quantizers`` replaces every
QuantizeLinear whose input is a constant by its int8 result, so the file stores int8
weights (a quarter of the float bytes) and ONNX Runtime sees the DQ → Conv/Gemm/MatMul → Q
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

from ..batches import Inputs, call, ordered_inputs
from ..errors import ModelError
from ..io import write_bytes

TORCH_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")


def quiet(loggers: tuple[str, ...] = TORCH_LOGGERS) -> contextlib.ExitStack:
    """Silence stdout, stderr, Python warnings and ``loggers`` (below ERROR) while the
    exporter, optimiser or quantizer runs; restored on exit.

    Example:
        >>> with quiet(("",)):
        ...     print("not shown")
    """
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in loggers:
        logger = logging.getLogger(name)
        old = logger.level
        logger.setLevel(logging.ERROR)
        stack.callback(logger.setLevel, old)
    return stack


def input_axes(example: Inputs) -> dict[str, dict[int, str]]:
    """ONNX input names with their dynamic axes: ``input`` (batch) for one tensor,
    ``input_0``… for a tuple, the keys (batch, and sequence when 2-D or more) for a dict.

    Example:
        >>> input_axes({"input_ids": torch.zeros(1, 5, dtype=torch.long)})
        {'input_ids': {0: 'batch', 1: 'sequence'}}
    """
    if isinstance(example, dict):
        return {k: ({0: "batch", 1: "sequence"} if v.dim() >= 2 else {0: "batch"})
                for k, v in example.items()}
    if isinstance(example, tuple | list):
        return {f"input_{i}": {0: "batch"} for i in range(len(example))}
    return {"input": {0: "batch"}}


def export_onnx_model(model: nn.Module, example: Inputs, opset: int = 17,
                      constant_folding: bool = True) -> onnx.ModelProto:
    """Export ``model`` (eval mode) with dynamic batch (and, for dict inputs, sequence)
    axes; returns the proto. ``example`` is a tensor or a dict of tensors, as the task
    gives them; a dict's entries are passed as keywords.

    The exporter is torch's TorchScript one (``dynamo=False``) for every model: the dynamo
    exporter (torch.export) cannot export fake-quant ops with a dynamic batch in torch 2.13,
    and on Hugging Face models, where it does work in fp32, it gives an equivalent graph but
    takes ~5x longer to export (tiny BERT: 7.5 s against 1.6 s). ``constant_folding=False``
    keeps every parameter as an initializer under its state-dict name (a ``.netpress`` file
    maps them back to the torch model; ONNX Runtime folds them when it loads the graph).

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
        return _export(model, ordered_inputs(model, example), opset, constant_folding)
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)


def _export(model: nn.Module, example: Inputs, opset: int,
            constant_folding: bool = True) -> onnx.ModelProto:
    axes = input_axes(example)
    out_axes = {0: "batch"}
    if isinstance(example, dict):
        with torch.no_grad():
            out = call(model, example)
        if isinstance(out, torch.Tensor) and out.dim() >= 3:
            out_axes[1] = "sequence"  # per-token outputs (a language model's logits)
    if isinstance(example, dict):
        args, kwargs = (), example
    else:
        args, kwargs = (tuple(example) if isinstance(example, tuple | list) else (example,)), None
    with tempfile.TemporaryDirectory(prefix="netpress-onnx-") as d, quiet():
        path = os.path.join(d, "model.onnx")
        try:
            # TorchScript exporter (see the docstring): torch.export has no meta kernel for
            # the fake-quant cachemask op with a dynamic batch dimension in torch 2.13.
            # transformers skips its "mask is all ones: drop it" shortcut while tracing
            # (masking_utils checks is_tracing), so a batch-1 example without padding
            # still gives a graph that applies the attention mask (tested on padded batches).
            torch.onnx.export(model, args, path, kwargs=kwargs, dynamo=False,
                              opset_version=opset, input_names=list(axes),
                              do_constant_folding=constant_folding,
                              output_names=["output"],
                              dynamic_axes={**axes, "output": out_axes})
        except Exception as e:  # the exporter raises many types; say which model failed
            raise ModelError(f"ONNX export failed for {type(model).__name__}: "
                             f"{str(e).splitlines()[0]}; use --backend torch") from e
        return onnx.load(path)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Identity" and n.input[0] in out:
            # the TorchScript exporter shares equal constants (e.g. zero points) via Identity
            out[n.output[0]] = out[n.input[0]]
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


def export_proto(model: nn.Module, example: Inputs, fold_qdq_weights: bool = True,
                 fuse: bool = True, info: dict | None = None,
                 constant_folding: bool = True) -> onnx.ModelProto:
    """The checked ONNX proto of ``model``; QDQ weights are folded to int8 initializers.
    ``example`` is one input (a tensor or a dict of tensors) of any batch size.

    A float Hugging Face encoder is exported with explicit attention and fused by ONNX
    Runtime's transformer optimiser (``export.fuse``; ``fuse=False`` keeps the plain
    graph). ``info``, when given, receives ``fused`` (fused op counts) and ``fuse_note``
    (why nothing was fused, if so).

    Example:
        >>> len(export_proto(nn.Sequential(nn.Linear(4, 2)), torch.zeros(1, 4)).graph.node)
        1
    """
    from .fuse import eager_attention, fuse_transformer, hf_config

    if not fuse and info is not None and hf_config(model) is not None:
        info.update(fused={}, fuse_note="not fused (fuse=False)")
    fuse = fuse and hf_config(model) is not None
    with eager_attention(model) if fuse else contextlib.nullcontext():
        proto = export_onnx_model(model, example, constant_folding=constant_folding or fuse)
    if fold_qdq_weights:
        fold_weight_quantizers(proto)
    if fuse:
        res = fuse_transformer(proto, model, example)
        proto = res.proto
        if info is not None:
            info.update(fused=res.fused, fuse_note=res.note)
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: nn.Module, example: Inputs, path: str | os.PathLike,
                fold_qdq_weights: bool = True, fuse: bool = True,
                info: dict | None = None) -> Path:
    """``export_proto`` written to ``path`` atomically (one file, no external data).

    Example:
        >>> export_onnx(nn.Sequential(nn.Linear(4, 2)), torch.zeros(1, 4), "m.onnx")  # doctest: +SKIP
        >>> export_onnx(encoder, task.example_inputs(1), "enc.onnx")  # doctest: +SKIP
    """
    return save_onnx(export_proto(model, example, fold_qdq_weights, fuse, info), path)

"""Export a weight-only quantized model to ONNX with ONNX Runtime's low-bit kernels.

Each ``nn.Linear`` that carries a ``FixedQuant`` (4 or 8 bits) becomes one
``com.microsoft.MatMulNBits`` node holding netpress's own integer codes, scales (float32,
an exact cast of the fp16-rounded scales) and packed uint8 zero points; a quantized
token-embedding table (``WeightOnly(embedding_bits=4|8)``) becomes a
``com.microsoft.GatherBlockQuantized``. No float copy of those weights stays in the file,
and the graph computes what the torch model computes (to float rounding, ~1e-6 relative
at ``accuracy_level=0``).

Why our own packer rather than ONNX Runtime's ``MatMulNBitsQuantizer``: that tool takes
a float graph and quantizes each MatMul weight again itself (its own min-max RTN grid).
Given our already-dequantized weights it would pick other scales and zero points, and
GPTQ's codes (chosen against calibration data, often not the nearest grid point of any
min-max grid) would be lost. We must ship netpress's codes exactly, so we write the
blocks ourselves (same bytes as ORT's quantizer writes for the same codes).

How layers are found in the graph: the model is exported once as a baked copy in which
every quantized weight is replaced by a distinct random *probe* tensor. An initializer
equal to a probe (or to its transpose, as the exporter folds ``Wᵀ`` for MatMul) belongs
to that layer and to no other, whatever the real values are (two layers with equal
weights, zero weights, tied tables). Each MatMul/Gemm/Gather reading a probe is replaced,
the probes are dropped, and a probe left anywhere else, or a quantized layer that ran
while exporting but whose probe is not found, is an error rather than a silent fp32
fallback.

Groups and blocks: MatMulNBits blocks run along K and have a power-of-two size 16..256
(the sizes MLAS has kernels for). A group size ``g`` (a multiple of 16) maps to blocks of
the largest such power of two dividing ``g``, each block repeating its group's scale and
zero point; per-channel grids (``group_size=0``) repeat the row's scale in every block.
K need not be a multiple of the block: the last block is padded (with the zero point,
though ONNX Runtime ignores the padding).

Speed notes (ONNX Runtime 1.32, x86): ``accuracy_level=0`` dequantizes to float32 and
gives the torch output; 4 quantizes the activations to int8 per block (faster on
VNNI CPUs, ~1e-2 relative error). 8-bit MatMulNBits has an MLAS kernel only at level 4;
at level 0 ORT dequantizes the whole weight on every call (correct, slow).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from ..batches import Inputs
from ..errors import ModelError
from .fuse import eager_attention, fuse_transformer, hf_config
from .nbits_pack import (  # noqa: F401 - re-exported
    BITS,
    NbitsLayer,
    block_size_for,
    nbits_layers,
    pack_gather,
    pack_matmul,
    plan_layer,
)
from .onnx import export_onnx_model, fold_weight_quantizers, save_onnx


def _key(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a.shape, hashlib.blake2b(a.tobytes(), digest_size=16).digest()


def _probe_copy(model: nn.Module, layers: dict[str, NbitsLayer]):
    """A baked copy whose quantized weights are distinct random probes, the probes' keys
    (plain and transposed) and the set of layers that ran (filled while exporting)."""
    from ..techniques.quantize.modules import baked_copy

    copy = baked_copy(model)
    mods = dict(copy.named_modules())
    gen = torch.Generator().manual_seed(0)
    keys: dict[tuple, tuple[str, bool]] = {}
    ran: set[str] = set()
    for name, lay in layers.items():
        p = torch.randn(lay.weight.shape, generator=gen)  # unlike any other tensor
        mods[name].weight = nn.Parameter(p, requires_grad=False)  # also unties shared tables
        keys[_key(p.numpy())] = (name, False)
        keys[_key(p.numpy().T)] = (name, True)
        mods[name].register_forward_hook(lambda m, a, o, name=name: ran.add(name))
    return copy, keys, ran


def _attr(node, name, default):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                default)


def _rewrite(proto: onnx.ModelProto, layers: dict[str, NbitsLayer], keys: dict,
             accuracy_level: int) -> set[str]:
    """Replace every node reading a probe by its low-bit node, in place; returns the
    layers replaced."""
    g = proto.graph
    probe = {}  # initializer name -> (layer, transposed)
    for init in g.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) == 2:
            hit = keys.get(_key(numpy_helper.to_array(init)))
            if hit:
                probe[init.name] = hit
    inits = {i.name: i for i in g.initializer}
    added: dict[str, onnx.TensorProto] = {}
    done: set[str] = set()

    def const(name: str, arr: np.ndarray) -> str:
        if name not in added:
            added[name] = numpy_helper.from_array(arr, name)
        return name

    nodes = []
    for node in g.node:
        src = [probe.get(i) for i in node.input]
        if not any(src):
            nodes.append(node)
            continue
        new = _replace(node, src, layers, inits, const, accuracy_level)
        if new is None:
            name = next(s for s in src if s)[0]
            raise ModelError(f"layer {name!r}: its weight feeds a {node.op_type} node the "
                             "MatMulNBits export cannot replace (a shared or reused "
                             "weight?); keep that layer float (WeightOnly targets ignore=…)")
        nodes.extend(new)
        done.update(s[0] for s in src if s)
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name not in probe or i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep + list(added.values()))
    if not any(o.domain == "com.microsoft" for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return done


def _replace(node, src, layers, inits, const, accuracy_level):
    """The nodes that replace ``node`` (which reads a probe), or None if it cannot be."""
    op = node.op_type
    if op == "Gather" and src[0] and not any(src[1:]) and _attr(node, "axis", 0) == 0:
        lay = layers[src[0][0]]
        if lay.kind != "embedding" or src[0][1]:
            return None
        data, zero = pack_gather(lay)
        base = f"{lay.name}.weight"
        ins = [const(f"{base}.q{lay.bits}", data), node.input[1],
               const(f"{base}.scales", lay.scale)]
        if not lay.symmetric_default:
            ins.append(const(f"{base}.zero_points", zero))
        return [helper.make_node("GatherBlockQuantized", ins, list(node.output), node.name,
                                 domain="com.microsoft", gather_axis=0, quantize_axis=1,
                                 block_size=lay.block, bits=lay.bits)]
    if op == "MatMul" and src[1] and not src[0]:
        if not src[1][1]:  # x @ W would need W as [K, N]: not a Linear's use
            return None
        bias = None
    elif op == "Gemm" and src[1] and not src[0] and not any(src[2:]):
        if (_attr(node, "transA", 0) or _attr(node, "alpha", 1.0) != 1.0
                or _attr(node, "beta", 1.0) != 1.0
                or bool(_attr(node, "transB", 0)) == src[1][1]):
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    else:
        return None
    lay = layers[src[1][0]]
    if lay.kind != "linear":
        return None
    b, zero = pack_matmul(lay)
    n, k = lay.codes.shape
    base = f"{lay.name}.weight"
    ins = [node.input[0], const(f"{base}.q{lay.bits}", b), const(f"{base}.scales", lay.scale),
           "" if lay.symmetric_default else const(f"{base}.zero_points", zero)]
    out = [node.output[0]]
    tail = []
    if bias is not None:
        c = inits.get(bias)
        if c is not None and list(c.dims) == [n]:
            ins += ["", bias]  # no g_idx; MatMulNBits adds a [N] bias itself
        else:
            out = [node.output[0] + "_nbits"]
            tail = [helper.make_node("Add", [out[0], bias], list(node.output),
                                     node.name + "_bias")]
    while ins and ins[-1] == "":
        ins.pop()
    attrs = {"K": k, "N": n, "bits": lay.bits, "block_size": lay.block}
    if accuracy_level:
        attrs["accuracy_level"] = accuracy_level
    return [helper.make_node("MatMulNBits", ins, out, node.name or f"{lay.name}_nbits",
                             domain="com.microsoft", **attrs), *tail]


def _tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, tuple | list):
        return [t for o in out for t in _tensors(o)]
    return []


def _feeding_outputs(model: nn.Module, example: Inputs, names: list[str]) -> list[str]:
    """Those of ``names`` whose weight the outputs depend on (a layer that runs but whose
    result is dropped, like a BERT pooler under mean pooling, is not in the graph)."""
    if not names:
        return []
    from ..batches import call, ordered_inputs

    mods = dict(model.named_modules())
    weights = [mods[n].weight for n in names]
    for w in weights:
        w.requires_grad_(True)
    try:
        with torch.enable_grad():
            outs = [t for t in _tensors(call(model, ordered_inputs(model, example)))
                    if t.requires_grad]
            if not outs:
                return names
            grads = torch.autograd.grad(sum(t.sum() for t in outs), weights,
                                        allow_unused=True)
    finally:
        for w in weights:
            w.requires_grad_(False)
    return [n for n, g in zip(names, grads, strict=True) if g is not None]


def export_nbits_model(model: nn.Module, example: Inputs, accuracy_level: int = 0,
                       info: dict | None = None, fuse: bool = True) -> onnx.ModelProto:
    """The ONNX proto of ``model`` with its quantized Linears as MatMulNBits (and its
    quantized token embedding as GatherBlockQuantized); see the module docstring. A Hugging
    Face encoder is fused first (``export.fuse``, attention as MultiHeadAttention) unless
    ``fuse`` is False; ``info`` receives what was fused, as in ``export_onnx``.

    Example:
        >>> proto = export_nbits_model(w4_model, torch.zeros(1, 64))  # doctest: +SKIP
    """
    if accuracy_level not in (0, 1, 2, 3, 4):
        raise ModelError(f"accuracy_level must be 0..4, got {accuracy_level}")
    layers = nbits_layers(model)
    if not layers:
        raise ModelError("the model has no Linear with a 4- or 8-bit FixedQuant; quantize "
                         "it with WeightOnly(bits=4) first")
    copy, keys, ran = _probe_copy(model, layers)
    if not fuse and info is not None and hf_config(copy) is not None:
        info.update(fused={}, fuse_note="not fused (fuse=False)")
    fuse = fuse and hf_config(copy) is not None
    with eager_attention(copy) if fuse else contextlib.nullcontext():
        proto = export_onnx_model(copy, example)
    fold_weight_quantizers(proto)
    if fuse:  # attention fused with its Q, K, V MatMuls apart, so each can be MatMulNBits
        table = any(lay.kind == "embedding" for lay in layers.values())
        res = fuse_transformer(proto, copy, example, separate_qkv=True,
                               embed_layer_norm=not table)
        proto = res.proto
        if info is not None:
            info.update(fused=res.fused, fuse_note=res.note)
    done = _rewrite(proto, layers, keys, accuracy_level)
    lost = _feeding_outputs(copy, example, sorted(ran - done))
    if lost:
        raise ModelError(f"layers {lost[:3]} ran while exporting but their weights were not "
                         "found in the graph as MatMul/Gemm/Gather constants; export them "
                         "float (WeightOnly targets ignore=…)")
    return proto


def export_nbits(model: nn.Module, example: Inputs, path: str | os.PathLike,
                 accuracy_level: int = 0, info: dict | None = None, fuse: bool = True) -> Path:
    """Export a weight-only quantized ``model`` to ``path`` with ONNX Runtime's
    MatMulNBits (and GatherBlockQuantized) kernels and netpress's own codes.
    ``accuracy_level`` 0 computes in float32 (the torch output), 4 with int8 activations.

    Example:
        >>> m = quantize_weights(model, WeightOnly(bits=4, group_size=32, method="rtn"))  # doctest: +SKIP
        >>> export_nbits(m, task.example_inputs(1), "w4.onnx")  # doctest: +SKIP
    """
    proto = export_nbits_model(model, example, accuracy_level, info, fuse)
    onnx.checker.check_model(proto)
    return save_onnx(proto, path)


__all__ = ["NbitsLayer", "block_size_for", "export_nbits", "export_nbits_model",
           "nbits_layers", "pack_gather", "pack_matmul", "plan_layer"]

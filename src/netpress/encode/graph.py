"""An ONNX graph as the JSON of a ``.netpress`` header, and its initializers as arrays.

The file carries the model's computation so that it runs without the Python class that
built it: the ONNX graph netpress exported (``export``), written as plain JSON data — ops,
value names, attributes, typed inputs and outputs, opsets — with every initializer (and
every ``Constant`` node's tensor) taken out as a named array that the file stores with its
own encodings (``encode.arrays``). Intermediate values are renamed ``0``, ``1``, … and
node names dropped, so the graph of a small model costs a few hundred bytes. The runtime
turns the JSON back into ONNX bytes without the ``onnx`` package (``runtime.protobuf``).

A graph with subgraphs (If / Loop / Scan) or with sparse initializers cannot be written;
netpress's exports of its zoo, Hugging Face encoders, classifiers and causal LMs have none.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError

_ELEM = {v: k for k, v in {
    "float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
    "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13}.items()}
SMALL_TENSOR = 16  # a tensor attribute of at most this many elements stays inline
# attributes whose value is the ONNX default are left out (the spec gives them)
DEFAULTS = {"Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
            "Flatten": {"axis": 1}, "Conv": {"group": 1}, "LeakyRelu": {"alpha": 0.01}}


def _value(v: onnx.ValueInfoProto) -> dict:
    t = v.type.tensor_type
    if t.elem_type not in _ELEM:
        raise ModelError(f"graph value {v.name!r} has ONNX type {t.elem_type}, which a "
                         ".netpress graph cannot hold")
    shape = [d.dim_param if d.HasField("dim_param") else int(d.dim_value)
             for d in t.shape.dim]
    return {"name": v.name, "dtype": _ELEM[t.elem_type], "shape": shape}


def _attr(a: onnx.AttributeProto) -> list:
    T = onnx.AttributeProto
    if a.type == T.FLOAT:
        return [a.name, "f", float(np.float32(a.f))]
    if a.type == T.INT:
        return [a.name, "i", int(a.i)]
    if a.type == T.STRING:
        return [a.name, "s", a.s.decode("utf-8")]
    if a.type == T.FLOATS:
        return [a.name, "floats", [float(np.float32(x)) for x in a.floats]]
    if a.type == T.INTS:
        return [a.name, "ints", [int(x) for x in a.ints]]
    if a.type == T.STRINGS:
        return [a.name, "strings", [s.decode("utf-8") for s in a.strings]]
    if a.type == T.TENSOR:
        arr = numpy_helper.to_array(a.t)
        if arr.size <= SMALL_TENSOR and arr.dtype.name in _ELEM.values():
            return [a.name, "t", {"dtype": arr.dtype.name, "dims": list(arr.shape),
                                  "data": arr.reshape(-1).tolist()}]
    raise ModelError(f"attribute {a.name!r} of type {T.AttributeType.Name(a.type)} cannot "
                     "be written in a .netpress graph (subgraphs and large tensor "
                     "attributes are not supported)")


def graph_of(proto: onnx.ModelProto) -> tuple[dict, dict[str, np.ndarray]]:
    """``(graph JSON, initializer arrays)`` of ``proto``; see the module docstring.

    Example:
        >>> import torch
        >>> from netpress.export.onnx import export_onnx_model
        >>> p = export_onnx_model(torch.nn.Sequential(torch.nn.Linear(3, 2)), torch.zeros(1, 3))
        >>> g, arrays = graph_of(p)
        >>> [n["op"] for n in g["nodes"]], sorted(arrays)
        (['Gemm'], ['0.bias', '0.weight'])
    """
    g = proto.graph
    if g.sparse_initializer:
        raise ModelError("the graph has sparse initializers, which a .netpress graph "
                         "cannot hold")
    arrays: dict[str, np.ndarray] = {}
    for init in g.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelError(f"initializer {init.name!r} has external data")
        arrays[init.name] = numpy_helper.to_array(init)
    kept = {v.name for v in g.input} | {v.name for v in g.output} | set(arrays)
    for n in g.node:  # Constant nodes become initializers under their output's name
        if n.op_type == "Constant" and not n.domain and len(n.attribute) == 1 and \
                n.attribute[0].name == "value":
            arrays[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
            kept.add(n.output[0])
    names: dict[str, str] = {}

    def rename(v: str) -> str:
        if not v or v in kept:
            return v
        return names.setdefault(v, str(len(names)))

    nodes = []
    for n in g.node:
        if n.output and n.output[0] in arrays and n.op_type == "Constant":
            continue
        node = {"op": n.op_type, "in": [rename(i) for i in n.input],
                "out": [rename(o) for o in n.output]}
        defaults = DEFAULTS.get(n.op_type, {}) if not n.domain else {}
        attrs = [a for a in map(_attr, n.attribute)
                 if not (a[0] in defaults and a[2] == defaults[a[0]])]
        if attrs:
            node["attrs"] = attrs
        if n.domain:
            node["domain"] = n.domain
        nodes.append(node)
    for name, arr in arrays.items():
        if arr.dtype.name not in _ELEM.values():
            raise ModelError(f"initializer {name!r} has dtype {arr.dtype}, which a .netpress "
                             "graph cannot hold")
    graph = {
        "ir_version": int(proto.ir_version),
        "opsets": {o.domain: int(o.version) for o in proto.opset_import},
        "inputs": [_value(v) for v in g.input if v.name not in arrays],
        "outputs": [_value(v) for v in g.output],
        "nodes": nodes,
        "initializers": sorted(arrays),
    }
    return graph, {k: arrays[k].copy(order="C") for k in sorted(arrays)}

"""The ONNX model bytes of a ``.netpress`` graph, written without the ``onnx`` package.

A ``.netpress`` file describes its graph as JSON in its header (docs/FORMAT.md, "The
graph") and holds the graph's initializers as encoded arrays. To run it, ONNX Runtime
needs a serialized ``onnx.ModelProto``. The runtime must not need the ``onnx`` package
(nor torch), and the protobuf wire format of the few messages involved is small, so we
write those bytes here: varints, length-delimited fields and fixed 32-bit floats, with the
field numbers of ``onnx.proto`` (IR version 8 and later). Only what the JSON graph can say
is written: nodes with their attributes (int, float, string, their lists, and small
tensors), the graph's typed inputs and outputs, opset imports and the initializers (as
``raw_data``). ``tests/runtime/test_protobuf.py`` checks the bytes parse back, with the
``onnx`` package, to the graph netpress exported.
"""

from __future__ import annotations

import struct

import numpy as np

# onnx.TensorProto.DataType
ONNX_DTYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6,
               "int64": 7, "bool": 9, "float16": 10, "float64": 11, "uint32": 12,
               "uint64": 13}
# onnx.AttributeProto.AttributeType and the field each kind is written in
ATTR_KINDS = {"f": (1, 2), "i": (2, 3), "s": (3, 4), "t": (4, 5), "floats": (6, 7),
              "ints": (7, 8), "strings": (8, 9)}


def varint(n: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as 64-bit two's complement.

    Example:
        >>> varint(300).hex(), varint(-1).hex()
        ('ac02', 'ffffffffffffffffff01')
    """
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def f_int(field: int, n: int) -> bytes:
    """A varint field."""
    return _key(field, 0) + varint(int(n))


def f_bytes(field: int, data: bytes | str) -> bytes:
    """A length-delimited field (bytes, a string, or an embedded message)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _key(field, 2) + varint(len(data)) + data


def f_float(field: int, x: float) -> bytes:
    """A fixed 32-bit float field."""
    return _key(field, 5) + struct.pack("<f", x)


def tensor_proto(name: str, arr: np.ndarray) -> bytes:
    """An ``onnx.TensorProto`` holding ``arr`` as raw little-endian data.

    Example:
        >>> tensor_proto("w", np.zeros(2, np.float32)).hex()
        '080210014201774a080000000000000000'
    """
    dtype = arr.dtype.name
    if dtype not in ONNX_DTYPES:
        raise ValueError(f"array {name!r} of dtype {dtype} has no ONNX type here")
    out = b"".join(f_int(1, d) for d in arr.shape) + f_int(2, ONNX_DTYPES[dtype])
    out += f_bytes(8, name)
    raw = arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False).tobytes()
    return out + f_bytes(9, raw)


def _attribute(name: str, kind: str, value) -> bytes:
    atype, field = ATTR_KINDS[kind]
    out = f_bytes(1, name)
    if kind == "f":
        out += f_float(field, value)
    elif kind == "i":
        out += f_int(field, value)
    elif kind == "s":
        out += f_bytes(field, value)
    elif kind == "t":
        arr = np.array(value["data"], dtype=value["dtype"]).reshape(value["dims"])
        out += f_bytes(field, tensor_proto("", arr))
    elif kind == "floats":
        out += b"".join(f_float(field, v) for v in value)
    elif kind == "ints":
        out += b"".join(f_int(field, v) for v in value)
    else:  # strings
        out += b"".join(f_bytes(field, v) for v in value)
    return out + f_int(20, atype)


def _node(node: dict) -> bytes:
    out = b"".join(f_bytes(1, i) for i in node["in"])
    out += b"".join(f_bytes(2, o) for o in node["out"])
    out += f_bytes(4, node["op"])
    out += b"".join(f_bytes(5, _attribute(*a)) for a in node.get("attrs", []))
    if node.get("domain"):
        out += f_bytes(7, node["domain"])
    return out


def _value_info(v: dict) -> bytes:
    dims = b"".join(f_bytes(1, f_bytes(2, d) if isinstance(d, str) else f_int(1, d))
                    for d in v["shape"])
    tensor_type = f_int(1, ONNX_DTYPES[v["dtype"]]) + f_bytes(2, dims)
    return f_bytes(1, v["name"]) + f_bytes(2, f_bytes(1, tensor_type))


def model_bytes(graph: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """The serialized ``onnx.ModelProto`` of a JSON graph and its initializer arrays
    (``arrays`` holds every name in ``graph["initializers"]``).

    Example:
        >>> g = {"ir_version": 8, "opsets": {"": 17}, "initializers": [],
        ...      "nodes": [{"op": "Relu", "in": ["x"], "out": ["y"]}],
        ...      "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 2]}],
        ...      "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 2]}]}
        >>> model_bytes(g, {})[:2].hex()
        '0808'
    """
    body = [f_bytes(1, _node(n)) for n in graph["nodes"]]
    body.append(f_bytes(2, "netpress"))
    body += [f_bytes(5, tensor_proto(name, arrays[name])) for name in graph["initializers"]]
    body += [f_bytes(11, _value_info(v)) for v in graph["inputs"]]
    body += [f_bytes(12, _value_info(v)) for v in graph["outputs"]]
    head = f_int(1, graph["ir_version"]) + f_bytes(2, "netpress")
    opsets = b"".join(f_bytes(8, (f_bytes(1, d) if d else b"") + f_int(2, v))
                      for d, v in sorted(graph["opsets"].items()))
    return head + f_bytes(7, b"".join(body)) + opsets

"""Load a ``.netpress`` file and run it in ONNX Runtime, with numpy alone (no torch).

``read_file`` validates the container (``encode.container``), the graph JSON and every
array entry, and decodes the arrays (``encode.arrays``) under the file's allocation
bound: at most ``BYTES_PER_FILE_BYTE`` bytes of decoded arrays per byte of file, plus
``FLOOR_BYTES`` (docs/FORMAT.md, "What a reader checks"). ``Model`` builds the ONNX bytes
of the graph (``runtime.protobuf``) and one ONNX Runtime session, spinning threads off and
the thread count explicit. Loading is data only: nothing the file names is imported or
called; the header's model spec is information.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..encode.arrays import DTYPES, declared_bytes, decode_array
from ..encode.container import unpack_container
from ..errors import FormatError, ModelError
from .grouping import run_grouped
from .protobuf import ATTR_KINDS, ONNX_DTYPES, model_bytes

FORMAT_NAME = "netpress-artifact"
BYTES_PER_FILE_BYTE = 256
FLOOR_BYTES = 256 << 20
MAX_NODES = 1 << 20


def allocation_bound(file_bytes: int) -> int:
    """Bytes of decoded arrays a file of ``file_bytes`` may make a reader allocate.

    Example:
        >>> allocation_bound(1000) == 256_000 + (256 << 20)
        True
    """
    return BYTES_PER_FILE_BYTE * file_bytes + FLOOR_BYTES


def import_onnxruntime():
    """Import ``onnxruntime`` with its telemetry off, so it writes nothing to ``$HOME``.

    ONNX Runtime (1.32) sets up telemetry when it is imported: it writes a device id and an
    event database under ``~/.cache/Microsoft``. The documented opt-out,
    ``ORT_DISABLE_TELEMETRY=1``, is read at import; it is set unless the user set it.

    Example:
        >>> import_onnxruntime().__name__
        'onnxruntime'
    """
    if "onnxruntime" not in sys.modules:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime
    except ImportError as e:
        raise ModelError("onnxruntime is not installed; pip install onnxruntime") from e
    return onnxruntime


def session_options(threads: int = 2, optimize: bool = True):
    """ONNX Runtime session options: ``threads`` intra-op threads, spinning off.

    Example:
        >>> session_options(1).intra_op_num_threads
        1
    """
    ort = import_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    return so


def _named(v, table) -> bool:
    """Whether ``v`` is a string key of ``table`` (a hostile header may put any JSON there)."""
    return isinstance(v, str) and v in table


def _strs(v, what: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise FormatError(f"graph {what} is not a list of names")
    return v


def _check_value(v, what: str) -> None:
    if not isinstance(v, dict) or not isinstance(v.get("name"), str) or \
            not _named(v.get("dtype"), ONNX_DTYPES) or not isinstance(v.get("shape"), list) or \
            not all((isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                    or isinstance(d, str) for d in v["shape"]):
        raise FormatError(f"graph {what} {v!r} is not a typed value")


def _check_attr(a) -> None:
    if not isinstance(a, list) or len(a) != 3 or not isinstance(a[0], str) or \
            not _named(a[1], ATTR_KINDS):
        raise FormatError(f"graph attribute {a!r} is not [name, kind, value]")
    kind, v = a[1], a[2]
    num = (int, float)
    ok = {
        "f": isinstance(v, num) and not isinstance(v, bool),
        "i": isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63,
        "s": isinstance(v, str),
        "floats": isinstance(v, list) and all(isinstance(x, num) and not isinstance(x, bool)
                                              for x in v),
        "ints": isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                            and -(1 << 63) <= x < 1 << 63 for x in v),
        "strings": isinstance(v, list) and all(isinstance(x, str) for x in v),
    }.get(kind)
    if kind == "t":
        ok = isinstance(v, dict) and _named(v.get("dtype"), ONNX_DTYPES) and \
            isinstance(v.get("dims"), list) and isinstance(v.get("data"), list) and \
            len(v["data"]) <= 64 and all(isinstance(d, int) and 0 <= d <= 64 for d in v["dims"])
        if ok:
            try:
                np.array(v["data"], dtype=v["dtype"]).reshape(v["dims"])
            except (ValueError, TypeError, OverflowError):
                ok = False
    if not ok:
        raise FormatError(f"graph attribute {a[0]!r} has a bad {kind} value")


def check_graph(graph) -> dict:
    """Check the shape of a header's graph JSON (names, types, attributes); FormatError
    on anything a writer of this format would not produce.

    Example:
        >>> check_graph({"ir_version": 8, "opsets": {"": 17}, "initializers": [],
        ...              "nodes": [], "inputs": [],
        ...              "outputs": [{"name": "y", "dtype": "float32", "shape": [1]}]})["ir_version"]
        8
    """
    if not isinstance(graph, dict):
        raise FormatError("the header has no graph; this file cannot run without its "
                          "model class: write it again with netpress 0.2 or later")
    if not isinstance(graph.get("ir_version"), int) or not 3 <= graph["ir_version"] <= 20:
        raise FormatError("graph ir_version is missing or out of range")
    ops = graph.get("opsets")
    if not isinstance(ops, dict) or not all(isinstance(v, int) and 1 <= v <= 1000
                                           for v in ops.values()):
        raise FormatError("graph opsets are not a map of domains to versions")
    nodes = graph.get("nodes")
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        raise FormatError("graph nodes are not a list")
    for n in nodes:
        if not isinstance(n, dict) or not isinstance(n.get("op"), str) or \
                not isinstance(n.get("domain", ""), str):
            raise FormatError(f"graph node {n!r} has no op")
        _strs(n.get("in"), "node inputs")
        _strs(n.get("out"), "node outputs")
        attrs = n.get("attrs", [])
        if not isinstance(attrs, list):
            raise FormatError("graph node attributes are not a list")
        for a in attrs:
            _check_attr(a)
    _strs(graph.get("initializers"), "initializers")
    for key in ("inputs", "outputs"):
        vals = graph.get(key)
        if not isinstance(vals, list) or (key == "outputs" and not vals):
            raise FormatError(f"graph {key} are not a list of typed values")
        for v in vals:
            _check_value(v, key[:-1])
    return graph


def read_file(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Validate and decode a whole file: ``(header, arrays by name)``.

    Example:
        >>> read_file(b"NOPE")
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: file is 4 bytes, shorter than the 24-byte prefix ...
    """
    header, streams = unpack_container(data)
    if header.get("format") != FORMAT_NAME:
        raise FormatError(f"header format is {header.get('format')!r}, not {FORMAT_NAME!r}")
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        raise FormatError("header has no tensor list")
    graph = check_graph(header.get("graph"))
    budget = allocation_bound(len(data))
    for entry in tensors:  # every declared size is checked before anything is decoded
        if not isinstance(entry, dict) or not _named(entry.get("dtype"), DTYPES):
            raise FormatError(f"bad tensor entry {entry!r:.80}")
        budget -= declared_bytes(entry)
    if budget < 0:
        raise FormatError(f"the tensors declare more bytes than a file of {len(data)} bytes "
                          f"may make a reader allocate ({allocation_bound(len(data))})")
    arrays: dict[str, np.ndarray] = {}
    for entry in tensors:
        name = entry.get("name")
        if not isinstance(name, str) or name in arrays:
            raise FormatError(f"bad or repeated tensor name {name!r}")
        if entry.get("encoding") in ("same", "transpose"):
            arrays[name] = _alias(entry, arrays)
        else:
            arrays[name] = decode_array(entry, streams, declared_bytes(entry))
    missing = [n for n in graph["initializers"] if n not in arrays]
    if missing:
        raise FormatError(f"graph initializers {missing[:3]} have no tensor in the file")
    return header, arrays


def _alias(entry: dict, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """A tensor stored as an earlier one (``same``) or its transpose (``transpose``)."""
    src = arrays.get(entry.get("of")) if isinstance(entry.get("of"), str) else None
    if src is None:
        raise FormatError(f"tensor {entry.get('name')!r} refers to {entry.get('of')!r}, "
                          "which is not an earlier tensor of the file")
    out = src if entry["encoding"] == "same" else (src.T.copy() if src.ndim == 2 else None)
    if out is None or list(out.shape) != entry.get("shape") or out.dtype.name != entry["dtype"]:
        raise FormatError(f"tensor {entry.get('name')!r} does not match the tensor it refers to")
    return out


def low_bit_accuracy(graph: dict, level: int) -> dict:
    """``graph`` with every ``MatMulNBits`` set to ``accuracy_level`` ``level``: 0 computes
    in float32 (the torch model's outputs), 4 quantizes activations to int8 per block (ONNX
    Runtime's fast low-bit kernels; 8-bit weights have a kernel only at 4).

    Example:
        >>> g = {"nodes": [{"op": "MatMulNBits", "domain": "com.microsoft", "in": [], "out": [],
        ...                 "attrs": [["accuracy_level", "i", 0], ["bits", "i", 4]]}]}
        >>> low_bit_accuracy(g, 4)["nodes"][0]["attrs"]
        [['bits', 'i', 4], ['accuracy_level', 'i', 4]]
    """
    nodes = []
    for n in graph["nodes"]:
        if n.get("op") == "MatMulNBits" and n.get("domain") == "com.microsoft":
            attrs = [a for a in n.get("attrs", []) if a[0] != "accuracy_level"]
            n = dict(n, attrs=[*attrs, ["accuracy_level", "i", level]])
        nodes.append(n)
    return dict(graph, nodes=nodes)


def _groupable(inputs: dict[str, dict], output: dict) -> bool:
    """Whether a batch may run in length groups: an ``attention_mask`` input of declared
    shape (batch, sequence) with symbolic axes, and a first output of shape (batch, d)
    with the same batch symbol and a width that is not the sequence axis — one row per
    text (a per-token output would have the sequence axis; ``run_grouped`` also checks the
    rows it gets)."""
    mask = inputs.get("attention_mask")
    if mask is None or len(mask["shape"]) != 2 or len(output["shape"]) != 2:
        return False
    batch, seq = mask["shape"]
    rows, width = output["shape"]
    return isinstance(batch, str) and isinstance(seq, str) and rows == batch and width != seq


class Model:
    """A loaded ``.netpress`` file: ``run(inputs)`` gives the graph's first output.

    ``inputs`` is one array (a model with one input), a list of arrays in input order,
    or a dict by input name (e.g. ``input_ids``, ``attention_mask``). Integer inputs are
    cast to the graph's dtype.

    A text encoder (an ``attention_mask`` input, one output row per text) runs a batch in
    groups of similar length (``runtime.grouping``) unless ``group_lengths`` is False; a
    batch of texts then costs about what its texts cost, not its size times its longest.

    4- and 8-bit weights (``MatMulNBits``) run with int8 activations unless ``exact``
    (``low_bit_accuracy``): on the CPUs measured here that is faster than the fp32 graph,
    where ``exact=True`` (float32 activations, the torch model's outputs to ~1e-6) is
    slower; outputs then differ from the exact form by about 1 % (docs/FORMAT.md).

    Example:
        >>> m = Model(open("m.netpress", "rb").read())  # doctest: +SKIP
        >>> m.run(np.zeros((1, 1, 28, 28), np.float32)).shape  # doctest: +SKIP
        (1, 10)
    """

    def __init__(self, data: bytes, threads: int = 2, exact: bool = False,
                 group_lengths: bool | None = None):
        self.header, arrays = read_file(data)
        self.exact = exact
        graph = low_bit_accuracy(self.header["graph"], 0 if exact else 4)
        self.inputs = {v["name"]: v for v in graph["inputs"]}
        self.input_names = list(self.inputs)
        self.output_names = [v["name"] for v in graph["outputs"]]
        self.threads = threads
        groupable = _groupable(self.inputs, graph["outputs"][0])
        self.group_lengths = groupable if group_lengths is None else group_lengths and groupable
        # the inputs a length group cuts: those declared with the mask's (batch, sequence)
        mask = self.inputs.get("attention_mask", {}).get("shape")
        self._cut = [n for n, v in self.inputs.items() if v["shape"] == mask]
        try:
            onnx_bytes = model_bytes(graph, arrays)
        except (ValueError, TypeError, KeyError, OverflowError) as e:
            raise FormatError(f"the graph cannot be written as ONNX ({e})") from e
        del arrays
        ort = import_onnxruntime()
        try:
            self.session = ort.InferenceSession(onnx_bytes, session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime raises its own exception types
            raise FormatError(f"ONNX Runtime cannot load the file's graph "
                              f"({str(e).splitlines()[0][:200]})") from e

    @property
    def spec(self) -> str:
        """The model spec the header records (information only; never built)."""
        return str((self.header.get("model") or {}).get("spec", "?"))

    def feeds(self, inputs) -> dict[str, np.ndarray]:
        """The session's feed dict for ``inputs`` (see the class docstring)."""
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ModelError(f"the model needs inputs {missing}, got {sorted(inputs)}")
            arrays = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, list | tuple):
            arrays = list(inputs)
        else:
            arrays = [inputs]
        if len(arrays) != len(self.input_names):
            raise ModelError(f"the model takes {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(arrays)}")
        out = {}
        for name, a in zip(self.input_names, arrays, strict=True):
            a = np.asarray(a)
            want = np.dtype(self.inputs[name]["dtype"])
            if a.dtype != want:
                if a.dtype.kind != want.kind and not (a.dtype.kind in "iub" and
                                                      want.kind in "iuf"):
                    raise ModelError(f"input {name} is {a.dtype}, the model takes {want}")
                a = a.astype(want)
            rank = len(self.inputs[name]["shape"])
            if a.ndim != rank:
                raise ModelError(f"input {name} has {a.ndim} dimensions, the model takes {rank} "
                                 f"(shape {self.inputs[name]['shape']})")
            out[name] = np.ascontiguousarray(a)
        return out

    def run(self, inputs) -> np.ndarray:
        """The first output of the graph for ``inputs``."""
        feeds = self.feeds(inputs)
        if self.group_lengths:
            return run_grouped(self._run, feeds, cut=self._cut)
        return self._run(feeds)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return self.session.run(self.output_names[:1], feeds)[0]
        except Exception as e:  # ONNX Runtime raises its own exception types
            raise ModelError(f"ONNX Runtime cannot run the file's graph on these inputs "
                             f"({str(e).splitlines()[0][:200]}); check their shapes against "
                             f"`netpress inspect`") from e


def load(path: str | os.PathLike, threads: int = 2, exact: bool = False,
         group_lengths: bool | None = None) -> Model:
    """Load a ``.netpress`` file for running (``exact``: see ``Model``).

    Example:
        >>> load("missing.netpress")
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: artifact not found: missing.netpress; ...
    """
    return Model(read_bytes(path), threads, exact, group_lengths)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an artifact file, with a clear error if it is missing.

    Example:
        >>> read_bytes("missing.netpress")
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: artifact not found: missing.netpress; ...
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"artifact not found: {path}; write one with `netpress compress` "
                          "or `netpress pack`")
    return path.read_bytes()

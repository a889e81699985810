"""Save a compressed model as one ``.netpress`` file that runs without its model class.

``artifact_bytes`` exports the model's computation as an ONNX graph and writes it as JSON
data in the header (``encode.graph``); the graph's initializers are the file's tensors,
each in its smallest encoding (``encode.arrays``: codebooks + sparse positions for shared
weights, entropy-coded bytes or 4-bit nibbles for int8 and ``MatMulNBits`` codes, raw
otherwise). The graph form is

- a weight-only 4/8-bit model (``WeightOnly``): ``MatMulNBits`` / ``GatherBlockQuantized``
  with netpress's own codes (``export.nbits``), fused for Hugging Face encoders;
- a Hugging Face encoder otherwise: the fused fp32 graph (``export.fuse``);
- a model with int8 weight fake-quantizers (``StaticInt8``, int8 QAT): the QDQ graph with
  its weights folded to int8 (``export.onnx.fold_weight_quantizers``), per-channel scales;
- any other model: the plain graph without constant folding, so every parameter is an
  initializer under its state-dict name.

When every tensor of the baked torch state is one of the graph's arrays (by name and
value, or as its transpose), the header's ``torch`` list says which, and
``model_from_artifact`` rebuilds the torch model exactly — but only for a model netpress
builds from data (a zoo name, or ``hf:DIR`` while that folder exists). Otherwise, and
always for ``package.module:factory`` specs, which are never imported or called, it
returns a ``GraphModule``: an ``nn.Module`` that runs the file's graph in ONNX Runtime.
``netpress.runtime`` runs any file with numpy and ONNX Runtime alone.

Timings never go in the header, so the same model, recipe and seed give the same bytes.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..batches import Inputs
from ..errors import FormatError, ModelError
from ..io import load_into, write_bytes
from ..runtime.model import FORMAT_NAME, read_bytes, read_file
from ..techniques.edits import rebuild, structure_of
from ..version import __version__
from ..zoo import ZOO, build_model
from .arrays import Coder, IndexKind, encode_array
from .container import pack_container
from .graph_module import GraphModule

EXTRA_MAX = 4096  # a state tensor the graph does not use (a buffer) is stored if this small


def baked_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What ``bake(model).state_dict()`` would hold, sorted by name, without changing
    ``model`` (tied tensors kept once).

    Example:
        >>> sorted(baked_state(nn.Linear(2, 1)))
        ['bias', 'weight']
    """
    from ..bake import bake
    from ..techniques.edits import unique_state

    state = unique_state(bake(copy.deepcopy(model)))
    return {k: state[k] for k in sorted(state)}


def baked_parts(model: nn.Module, spec: str) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, structure)`` of ``model`` baked once (``model`` is not changed): the state
    as ``baked_state`` gives it, and the structure (``edits.structure_of``) of the baked
    model, so layers still under masks or codebooks are compared by their plain shapes.

    Example:
        >>> state, structure = baked_parts(build_model("lenet5"), "lenet5")
        >>> structure
        {'edits': [], 'resized': False}
    """
    from ..bake import bake
    from ..techniques.edits import unique_state

    baked = bake(copy.deepcopy(model))
    state = unique_state(baked)
    return {k: state[k] for k in sorted(state)}, structure_of(baked, spec)


def default_example(model: nn.Module, spec: str | None = None) -> Inputs:
    """Example inputs for tracing when no task gives them: token ids and a mask for a
    Hugging Face wrapper, one 1×1×28×28 image for the zoo, else an input that fits the
    first Linear (``1 × in_features``) or convolution (``1 × C × 28 × 28``).

    Example:
        >>> default_example(nn.Linear(6, 2)).shape
        torch.Size([1, 6])
    """
    from ..export.fuse import hf_config

    if hf_config(model) is not None:
        ex = {"input_ids": torch.full((1, 8), 5, dtype=torch.long),
              "attention_mask": torch.ones(1, 8, dtype=torch.long)}
        if getattr(model, "_token_types", False):
            ex["token_type_ids"] = torch.zeros(1, 8, dtype=torch.long)
        return ex
    if spec not in ZOO:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                return torch.zeros(1, m.in_features)
            if isinstance(m, nn.Conv1d | nn.Conv2d):
                return torch.zeros(1, m.in_channels, *([28] * (m.weight.dim() - 2)))
    return torch.zeros(1, 1, 28, 28)


def graph_proto(model: nn.Module, example: Inputs, fuse: bool = True,
                baked: nn.Module | None = None):
    """The ONNX proto the file carries (see the module docstring for the form);
    ``baked`` is ``bake`` of a copy of ``model`` when the caller has one already."""
    from ..export.fuse import hf_config
    from ..export.nbits import export_nbits_model, nbits_layers
    from ..export.onnx import export_proto

    model = model.eval()
    if nbits_layers(model):
        return export_nbits_model(model, example, fuse=fuse)
    if _int8_weights(model):  # fake-quant int8: QDQ with the weights folded to int8
        return export_proto(model, example, fuse=False)
    if baked is None:
        from ..bake import bake

        baked = bake(copy.deepcopy(model))
    baked = baked.eval()
    fuse = fuse and hf_config(baked) is not None
    return export_proto(baked, example, fuse=fuse, constant_folding=False)


def _int8_weights(model: nn.Module) -> bool:
    """Whether ``model`` carries 8-bit weight fake-quantizers (PTQ / int8 QAT)."""
    from ..techniques.quantize.modules import WeightQuant

    return any(isinstance(p, WeightQuant) and p.bits == 8 and p.kind == "int" and p.enabled
               for m in model.modules() if hasattr(m, "parametrizations")
               for plist in m.parametrizations.values() for p in plist)


def _torch_map(state: dict[str, torch.Tensor], arrays: dict[str, np.ndarray]):
    """``(map, extra)``: per state tensor ``[name, array, transposed]``, and the small
    tensors the graph does not use; ``(None, {})`` when a large one is not in the graph."""
    index: dict[tuple, str] = {}
    for name, a in arrays.items():
        index.setdefault((a.dtype.str, a.shape, a.tobytes()), name)
    out, extra = [], {}
    for name, t in state.items():
        a = t.detach().cpu().contiguous().numpy()
        key = (a.dtype.str, a.shape, a.tobytes())
        if name in arrays and arrays[name].shape == a.shape and \
                np.array_equal(arrays[name], a, equal_nan=True):
            out.append([name])
        elif key in index:
            out.append([name, index[key], 0])
        elif a.ndim == 2 and (k := (a.dtype.str, a.T.shape, np.ascontiguousarray(a.T).tobytes())) \
                in index:
            out.append([name, index[k], 1])
        elif a.size <= EXTRA_MAX:
            extra[f"torch:{name}"] = a
            out.append([name, f"torch:{name}", 0])
        else:
            return None, {}
    return out, extra


def _encode_arrays(arrays: dict[str, np.ndarray], coder: Coder, index: IndexKind
                   ) -> tuple[list[dict], list[bytes]]:
    """The header's tensor entries and the streams of ``arrays``, each in its smallest
    encoding; a tied table is stored once (the same tensor, or its transpose)."""
    streams: list[bytes] = []
    tensors, seen = [], {}
    for name, a in arrays.items():
        key = (a.dtype.str, a.shape, hashlib.sha256(a.tobytes()).digest())
        t_key = (a.dtype.str, a.T.shape, hashlib.sha256(a.T.tobytes()).digest()) \
            if a.ndim == 2 else None
        alias = {"name": name, "shape": list(a.shape), "dtype": a.dtype.name}
        if key in seen:
            tensors.append(dict(alias, encoding="same", of=seen[key]))
        elif t_key in seen:
            tensors.append(dict(alias, encoding="transpose", of=seen[t_key]))
        else:
            tensors.append(encode_array(name, a, streams, coder, index))
            seen[key] = name
    return tensors, streams


def graph_artifact_bytes(proto, spec: str, recipe: list[dict] | None = None,
                         metrics: dict | None = None, coder: Coder = "ans",
                         index: IndexKind = "auto") -> bytes:
    """The bytes of a ``.netpress`` file holding the ONNX graph ``proto`` as it is — e.g.
    the dynamic-int8 graph ``netpress export`` made — with its int8 / uint8 tables
    entropy-coded. There is no torch state: loading it gives a ``GraphModule``, and
    ``netpress.runtime`` runs it.

    Example:
        >>> graph_artifact_bytes(onnx.load("int8.onnx"), "hf:minilm")[:8]  # doctest: +SKIP
        b'NETPRESS'
    """
    from ..encode.graph import graph_of

    graph, arrays = graph_of(proto)
    tensors, streams = _encode_arrays(arrays, coder, index)
    params = sum(int(a.size) for a in arrays.values())
    header = {
        "format": FORMAT_NAME,
        "netpress_version": __version__,
        "model": {"spec": spec, "class": "onnx", "params": params},
        "recipe": recipe or [],
        "metrics": metrics or {},
        "graph": graph,
        "tensors": tensors,
    }
    return pack_container(header, streams)


def artifact_bytes(model: nn.Module, spec: str, recipe: list[dict] | None = None,
                   metrics: dict | None = None, coder: Coder = "ans",
                   index: IndexKind = "auto", example: Inputs | None = None,
                   fuse: bool = True) -> bytes:
    """The bytes of a ``.netpress`` file for ``model`` (built by ``spec``); ``example`` is
    one input as the task gives it (default: ``default_example``).

    Example:
        >>> from netpress.zoo import build_model
        >>> artifact_bytes(build_model("lenet5"), "lenet5")[:8]
        b'NETPRESS'
    """
    from ..bake import bake
    from ..encode.graph import graph_of
    from ..techniques.edits import unique_state

    baked = bake(copy.deepcopy(model))  # once: the state, the structure and the graph
    state = unique_state(baked)
    state = {k: state[k] for k in sorted(state)}
    structure = structure_of(baked, spec)
    example = default_example(model, spec) if example is None else example
    graph, arrays = graph_of(graph_proto(model, example, fuse, baked=baked))
    torch_map, extra = _torch_map(state, arrays)
    tensors, streams = _encode_arrays({**arrays, **extra}, coder, index)
    params = sum(t.numel() for t in state.values() if t.is_floating_point())
    desc = {"spec": spec, "class": type(model).__name__, "params": params}
    if structure["edits"] or structure["resized"]:  # plain models keep the original header
        desc.update(structure)
    header = {
        "format": FORMAT_NAME,
        "netpress_version": __version__,
        "model": desc,
        "recipe": recipe or [],
        "metrics": metrics or {},
        "graph": graph,
        "tensors": tensors,
    }
    if torch_map is not None:  # every tensor its own state tensor under its name: say so once
        plain = all(len(r) == 1 for r in torch_map) and len(torch_map) == len(tensors)
        header["torch"] = "names" if plain else torch_map
    return pack_container(header, streams)


def save_artifact(model: nn.Module, path: str | os.PathLike, spec: str, **kw) -> int:
    """Write ``model`` to ``path`` atomically; returns the file's size in bytes.

    Example:
        >>> save_artifact(model, "m.netpress", "lenet-300-100")  # doctest: +SKIP
        21034
    """
    data = artifact_bytes(model, spec, **kw)
    write_bytes(path, data)
    return len(data)


def decode_artifact(data: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    """Validate and decode a whole file: ``(header, its tensors by name)``; the header
    keeps the file's bytes under ``"_data"`` for ``model_from_artifact``.

    Example:
        >>> from netpress.zoo import build_model
        >>> header, tensors = decode_artifact(artifact_bytes(build_model("lenet5"), "lenet5"))
        >>> header["model"]["spec"], header["torch"], len(tensors)
        ('lenet5', 'names', 10)
    """
    header, arrays = read_file(data)
    header["_data"] = data
    return header, {k: torch.from_numpy(v) for k, v in arrays.items()}


def torch_state(header: dict, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The torch state dict the file maps its tensors to, or None if it has none."""
    rows = header.get("torch")
    if rows == "names":
        rows = [[name] for name in tensors]
    if not isinstance(rows, list):
        return None
    state = {}
    for row in rows:
        if not isinstance(row, list) or not 1 <= len(row) <= 3 or \
                not all(isinstance(x, str) for x in row[:2]):
            raise FormatError(f"bad torch map entry {row!r:.80}")
        name, src = row[0], row[1] if len(row) > 1 else row[0]
        if src not in tensors:
            raise FormatError(f"torch map names a missing tensor {src!r}")
        t = tensors[src]
        if len(row) == 3 and row[2] == 1:
            if t.dim() != 2:
                raise FormatError(f"torch map transposes {src!r}, which is not 2-D")
            t = t.t().contiguous()
        state[name] = t
    return state


def buildable(spec: object) -> bool:
    """Whether netpress builds ``spec`` from data alone: a zoo name, or ``hf:DIR`` with
    that folder present. ``package.module:factory`` is never built from a file.

    Example:
        >>> buildable("lenet5"), buildable("os:getpid")
        (True, False)
    """
    if not isinstance(spec, str):
        return False
    return spec in ZOO or (spec.startswith("hf:") and Path(spec[3:]).is_dir())


def model_from_artifact(header: dict, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """The model of a decoded file (eval mode): the torch model rebuilt exactly when the
    file maps its tensors to a torch state and the spec is ``buildable``, else a
    ``GraphModule`` over the file's graph.

    Example:
        >>> from netpress.zoo import build_model
        >>> m = model_from_artifact(*decode_artifact(artifact_bytes(build_model("lenet5"),
        ...                                                         "lenet5")))
        >>> type(m).__name__
        'LeNet5'
    """
    desc = header.get("model") or {}
    spec = desc.get("spec") if isinstance(desc, dict) else None
    state = torch_state(header, tensors)
    if state is not None and buildable(spec):
        if desc.get("edits") or desc.get("resized"):
            return rebuild(spec, desc, state, source="artifact tensors")
        model = build_model(spec)
        from ..zoo.hf_state import load_state, tied_names

        if tied_names(model):  # tied tensors (GPT-2's lm_head) are stored once
            load_state(model, state, source="artifact tensors")
        else:
            load_into(model, state, source="artifact tensors")
        return model.eval()
    data = header.get("_data")
    if not isinstance(data, bytes):
        raise ModelError("model_from_artifact needs the header decode_artifact returns")
    return GraphModule(data).eval()


def read_artifact(path: str | os.PathLike) -> bytes:
    """The bytes of an artifact file (``runtime.model.read_bytes``: a clear error if it is
    missing)."""
    return read_bytes(path)


def load_artifact(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Load ``path``: ``(model, header)`` (see ``model_from_artifact``).

    Example:
        >>> model, header = load_artifact("m.netpress")  # doctest: +SKIP
    """
    header, tensors = decode_artifact(read_artifact(path))
    return model_from_artifact(header, tensors), header


def load(path: str | os.PathLike) -> nn.Module:
    """``netpress.load``: the model of a ``.netpress`` file, with no model class needed.

    Example:
        >>> model = netpress.load("m.netpress")  # doctest: +SKIP
    """
    return load_artifact(path)[0]

"""Save a compressed model as one ``.netpress`` file, and load it back exactly.

``artifact_bytes`` takes the model's baked weights (codebooks and masks folded), encodes
every tensor of its state dict (``encode.tensors``) and packs them with a header that
says how to rebuild the model (``model.spec``: a zoo name or ``package.module:factory``),
the recipe that produced it and deterministic metrics. Timings never go in the header,
so the same model, recipe and seed give the same bytes.

``load_artifact`` validates the container, decodes each tensor under an allocation cap
of ``MAX_ELEMENTS_PER_BYTE`` elements per byte of file (a 256× compression ratio at
fp32; a file claiming more is refused), rebuilds the model and loads the weights.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import FormatError
from ..io import load_into, write_bytes
from ..techniques.edits import rebuild, structure_of
from ..version import __version__
from ..zoo import build_model
from .container import pack_container, unpack_container
from .tensors import Coder, IndexKind, decode_tensor, encode_tensor

FORMAT_NAME = "netpress-artifact"
MAX_ELEMENTS_PER_BYTE = 64


def baked_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What ``bake(model).state_dict()`` would hold, sorted by name, without changing
    ``model`` (``netpress.api.bake`` is safe on deep copies).

    Example:
        >>> lin = nn.Linear(2, 1)
        >>> sorted(baked_state(lin))
        ['bias', 'weight']
    """
    from ..bake import bake
    from ..techniques.edits import unique_state

    state = unique_state(bake(copy.deepcopy(model)))  # a tied tensor is kept once
    return {k: state[k] for k in sorted(state)}


def baked_parts(model: nn.Module, spec: str) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, structure)`` of ``model`` baked once (``model`` is not changed): the state
    as ``baked_state`` gives it, and the structure (``edits.structure_of``) of the baked
    model, so layers still under masks or codebooks are compared by their plain shapes.

    Example:
        >>> from netpress.zoo import build_model
        >>> state, structure = baked_parts(build_model("lenet5"), "lenet5")
        >>> structure
        {'edits': [], 'resized': False}
    """
    from ..bake import bake
    from ..techniques.edits import unique_state

    baked = bake(copy.deepcopy(model))
    state = unique_state(baked)
    return {k: state[k] for k in sorted(state)}, structure_of(baked, spec)


def artifact_bytes(model: nn.Module, spec: str, recipe: list[dict] | None = None,
                   metrics: dict | None = None, coder: Coder = "ans",
                   index: IndexKind = "auto") -> bytes:
    """The bytes of a ``.netpress`` file for ``model`` (built by ``spec``).

    Example:
        >>> from netpress.zoo import build_model
        >>> artifact_bytes(build_model("lenet5"), "lenet5")[:8]
        b'NETPRESS'
    """
    streams: list[bytes] = []
    state, structure = baked_parts(model, spec)
    tensors = [encode_tensor(name, t, streams, coder, index) for name, t in state.items()]
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
        "tensors": tensors,
    }
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
    """Validate and decode a whole file: ``(header, state dict)``.

    Example:
        >>> from netpress.zoo import build_model
        >>> header, state = decode_artifact(artifact_bytes(build_model("lenet5"), "lenet5"))
        >>> header["model"]["spec"], len(state)
        ('lenet5', 10)
    """
    header, streams = unpack_container(data)
    if header.get("format") != FORMAT_NAME:
        raise FormatError(f"header format is {header.get('format')!r}, not {FORMAT_NAME!r}")
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        raise FormatError("header has no tensor list")
    budget = MAX_ELEMENTS_PER_BYTE * len(data)
    state: dict[str, torch.Tensor] = {}
    for entry in tensors:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in state:
            raise FormatError(f"bad or repeated tensor name {name!r}")
        t = decode_tensor(entry, streams, budget)
        budget -= t.numel()
        state[name] = t
    return header, state


def read_artifact(path: str | os.PathLike) -> bytes:
    """The bytes of an artifact file, with a clear error if it is missing.

    Example:
        >>> read_artifact("missing.netpress")
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: artifact not found: missing.netpress; ...
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"artifact not found: {path}; write one with `netpress compress` "
                          "or `netpress pack`")
    return path.read_bytes()


def model_from_artifact(header: dict, state: dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild the model the header names and load ``state`` into it (eval mode).

    Example:
        >>> from netpress.zoo import build_model
        >>> m = model_from_artifact(*decode_artifact(artifact_bytes(build_model("lenet5"),
        ...                                                         "lenet5")))
        >>> type(m).__name__
        'LeNet5'
    """
    desc = header.get("model") or {}
    spec = desc.get("spec")
    if not isinstance(spec, str):
        raise FormatError("header does not say which model to build (model.spec)")
    if desc.get("edits") or desc.get("resized"):
        return rebuild(spec, desc, state, source="artifact tensors")
    model = build_model(spec)
    from ..zoo.hf_state import load_state, tied_names

    if tied_names(model):  # tied tensors (GPT-2's lm_head) are stored once, under the first name
        load_state(model, state, source="artifact tensors")
    else:
        load_into(model, state, source="artifact tensors")
    return model.eval()


def load_artifact(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Load ``path``: ``(model, header)``. Outputs equal the saved model's exactly.

    Example:
        >>> model, header = load_artifact("m.netpress")  # doctest: +SKIP
    """
    header, state = decode_artifact(read_artifact(path))
    return model_from_artifact(header, state), header

"""Architecture edits that a saved file can replay, and saving/loading edited models.

Low-rank factorization, width students, layer dropping and cross-layer tying change a
model's *shape*, so its weights no longer fit ``build_model(spec)``. Each such change
is recorded on the model as a small JSON-able dict (an *edit*) and written into the
safetensors metadata under ``netpress.edits``. ``load_edited`` rebuilds the base model,
replays the edits (which only change structure, never weights), shrinks layers when the
file is marked as structurally pruned, and loads the tensors — one loader for every
shape-changing technique (``rebuild``, shared with run checkpoints and artifacts).

Tied tensors (cross-layer sharing) are written once: only the first name of every
parameter object is saved, and the ``tie`` edit re-creates the sharing before loading.
The replay table is an explicit dict filled by ``@edit_op``; the loader imports the
technique modules that fill it, nothing is discovered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..errors import FormatError, ModelError
from ..io import WEIGHTS_FORMAT, load_weights, safetensors_bytes, write_bytes
from ..zoo import build_model

EDITS_KEY = "netpress.edits"
EDIT_OPS: dict[str, Callable[[nn.Module, dict], nn.Module]] = {}


def edit_op(name: str) -> Callable[[Callable], Callable]:
    """Register ``replay(model, edit) -> model`` for edits with ``{"op": name}``."""

    def deco(fn: Callable) -> Callable:
        EDIT_OPS[name] = fn
        return fn

    return deco


def edits_of(model: nn.Module) -> list[dict]:
    """The edits recorded on ``model`` (a copy), oldest first.

    Example:
        >>> edits_of(nn.Linear(2, 2))
        []
    """
    return [dict(e) for e in getattr(model, "netpress_edits", [])]


def record_edit(model: nn.Module, edit: dict, inherit: list[dict] | None = None) -> nn.Module:
    """Append ``edit`` (must have an ``op`` key) to the model's edit list."""
    if edit.get("op") not in EDIT_OPS:
        raise ValueError(f"unknown edit op {edit.get('op')!r}")
    edits = (inherit if inherit is not None else edits_of(model)) + [edit]
    object.__setattr__(model, "netpress_edits", edits)
    return model


def replay(model: nn.Module, edits: list[dict]) -> nn.Module:
    """Apply recorded edits to a freshly built base model (structure only)."""
    from . import load_techniques

    load_techniques()  # the modules that register edit ops
    for e in edits:
        op = e.get("op")
        if op not in EDIT_OPS:
            raise FormatError(f"the file needs edit {op!r}, which this netpress does not know; "
                              "upgrade netpress")
        model = EDIT_OPS[op](model, e)
        record_edit(model, e)
    return model


def unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with every shared tensor kept once, under its first name.

    Example:
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        >>> m[1].weight = m[0].weight
        >>> sorted(unique_state(m))
        ['0.bias', '0.weight', '1.bias']
    """
    seen: set[int] = set()
    out = {}
    for k, v in model.state_dict(keep_vars=True).items():
        if id(v) in seen:
            continue
        seen.add(id(v))
        out[k] = v.detach().cpu().contiguous().clone()
    return out


def save_edited(model: nn.Module, path: str | os.PathLike, spec: str,
                metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (built from ``spec``, then edited) as safetensors with its edits.

    Example:
        >>> save_edited(model, "lowrank.safetensors", "lenet-300-100")  # doctest: +SKIP
    """
    meta = {"format": WEIGHTS_FORMAT, "model": spec,
            EDITS_KEY: json.dumps(edits_of(model), sort_keys=True, separators=(",", ":")),
            **(metadata or {})}
    return write_bytes(path, safetensors_bytes(unique_state(model), meta))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors metadata of ``path`` (validated by loading the file first)."""
    load_weights(path)  # refuses pickles and corrupt files with a clear message
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_edited(path: str | os.PathLike, spec: str | None = None) -> nn.Module:
    """Rebuild a model saved with its structure: base model, replayed edits, layers shrunk
    when the file says structured pruning removed channels (``netpress.pruned``), weights.
    Reads files of ``save_edited``, run checkpoints and structurally pruned weights alike.

    ``spec`` defaults to the ``model`` recorded in the file.

    Example:
        >>> model = load_edited("lowrank.safetensors")  # doctest: +SKIP
    """
    from .prune.resize import STRUCTURED_KEY, STRUCTURED_VALUE

    meta = read_metadata(path)
    spec = spec or meta.get("model")
    if not spec:
        raise ModelError(f"{path} does not say which model it holds; pass the model spec")
    try:
        edits = json.loads(meta.get(EDITS_KEY, "[]"))
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: the {EDITS_KEY} metadata is not valid JSON ({e})") from e
    structure = {"edits": edits, "resized": meta.get(STRUCTURED_KEY) == STRUCTURED_VALUE}
    return rebuild(spec, structure, load_weights(path), source=str(path))


def structure_of(model: nn.Module, spec: str) -> dict:
    """How ``model`` departs from ``build_model(spec)``: its recorded ``edits`` and whether
    layers were shrunk by structured pruning (``resized``). JSON-able; ``rebuild`` uses it.

    Example:
        >>> structure_of(build_model("lenet5"), "lenet5")
        {'edits': [], 'resized': False}
    """
    edits = edits_of(model)
    try:
        plain = replay(build_model(spec), edits)
    except ModelError:
        if edits:
            raise
        return {"edits": [], "resized": False}  # a spec only its caller can build
    own = plain.state_dict()
    resized = any(k in own and tuple(own[k].shape) != tuple(v.shape)
                  for k, v in model.state_dict().items())
    return {"edits": edits, "resized": resized}


def rebuild(spec: str, structure: dict, state: dict[str, torch.Tensor],
            source: str = "weights") -> nn.Module:
    """Build ``spec``, replay ``structure`` (from ``structure_of``) and load ``state``
    (shared tensors may appear once, under their first name). Eval mode.

    Example:
        >>> m = build_model("lenet5")
        >>> type(rebuild("lenet5", structure_of(m, "lenet5"), m.state_dict())).__name__
        'LeNet5'
    """
    from .prune.resize import resize_to_state

    edits = structure.get("edits", [])
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise FormatError(f"{source}: the model's edits must be a list of objects")
    model = replay(build_model(spec), edits)
    if structure.get("resized"):
        resize_to_state(model, state)
    own = unique_state(model)
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or extra or bad:
        raise ModelError(f"{source} do not fit {spec} after its edits (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}, wrong shape {bad[:3]}); check the model spec")
    model.load_state_dict(state, strict=False)
    return model.eval()

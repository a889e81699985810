"""Atomic file writes and safetensors weights, never pickles.

Weights travel as safetensors. A file that is a pickle (``torch.save`` output) is
refused with a message telling how to convert it, because loading a pickle runs code.

We write safetensors files ourselves (the format is a length, a JSON header and raw
little-endian data) because the library's writer emits the metadata map in a random
order, so the same weights would not give the same bytes twice. Reading goes through
the safetensors library, which validates the header.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .errors import FormatError, ModelError

WEIGHTS_FORMAT = "netpress-weights/1"


def atomic_write(path: str | os.PathLike, writer: Callable[[str], None]) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` fills a temp file in the same
    folder, which is fsynced and renamed over ``path``. On failure nothing changes.

    Example:
        >>> atomic_write("out.txt", lambda p: Path(p).write_text("hi"))  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda p: Path(p).write_bytes(data))


def json_safe(obj: object) -> object:
    """``obj`` with NaN/inf as ``None``, tuples as lists and paths as strings: strict JSON.

    Example:
        >>> json_safe({"a": float("nan"), "b": (1, Path("x"))})
        {'a': None, 'b': [1, 'x']}
    """
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Atomically write ``obj`` as indented, strict JSON (``json_safe``)."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
    return write_bytes(path, (text + "\n").encode())


def _state_for_saving(model_or_state: nn.Module | dict[str, torch.Tensor]) -> dict:
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().cpu().contiguous().clone()
    return out


_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def safetensors_bytes(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """Serialize tensors as safetensors with a deterministic header (sorted keys).

    Example:
        >>> len(safetensors_bytes({"a": torch.zeros(2)}, {})) > 8
        True
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(state):
        t = state[name]
        if t.dtype not in _DTYPES:
            raise ModelError(f"tensor {name} has dtype {t.dtype}, which safetensors cannot hold")
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else \
            t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def save_weights(
    model_or_state: nn.Module | dict[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Save a model's state dict as safetensors, atomically.

    Example:
        >>> save_weights(nn.Linear(2, 2), "w.safetensors", {"model": "toy"})  # doctest: +SKIP
    """
    state = _state_for_saving(model_or_state)
    meta = {"format": WEIGHTS_FORMAT, **(metadata or {})}
    return write_bytes(path, safetensors_bytes(state, meta))


def _looks_like_pickle(head: bytes) -> bool:
    # torch.save writes a zip archive (PK\x03\x04) or, in the legacy format, a raw
    # pickle stream starting with the PROTO opcode 0x80. A safetensors file whose header
    # length has 0x80 as low byte starts with 0x80 too, but its 9th byte is "{".
    return head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[8:9] != b"{")


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file into a dict of tensors; refuse pickles.

    Example:
        >>> state = load_weights("w.safetensors")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}; train one with `netpress train`")
    with open(path, "rb") as f:
        head = f.read(9)
    if _looks_like_pickle(head):
        raise FormatError(
            f"{path} is a pickle (torch.save) file, which netpress never loads because "
            "unpickling runs code; convert it once with safetensors.torch.save_file("
            "torch.load(path, weights_only=True), 'model.safetensors')"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise FormatError(f"{path} is not a valid safetensors file ({e}); re-save the weights") from e


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "weights") -> nn.Module:
    """Copy ``state`` into ``model``, with one clear error for missing, extra or
    mis-shaped tensors."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    bad = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or extra or bad:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if extra:
            parts.append(f"unexpected {extra[:3]}")
        if bad:
            parts.append(f"wrong shape {bad[:3]}")
        raise ModelError(
            f"{source} do not fit the model ({'; '.join(parts)}); "
            "check that --model names the architecture these weights were trained for"
        )
    model.load_state_dict(state)
    return model


def file_size(path: str | os.PathLike) -> int:
    """Bytes of a file on disk."""
    return os.stat(path).st_size

"""Torch tensors in and out of the per-array encodings of ``encode.arrays``.

Example:
    >>> s = []
    >>> w = torch.tensor([[0.0, 0.5], [0.5, -1.0]])
    >>> torch.equal(decode_tensor(encode_tensor("w", w, s), s, 100), w)
    True
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import FormatError
from .arrays import (  # noqa: F401 - re-exported
    Coder,
    IndexKind,
    code_stream,
    decode_array,
    decode_stream,
    encode_array,
)


def encode_tensor(name: str, t: torch.Tensor, streams: list[bytes], coder: Coder = "ans",
                  index: IndexKind = "auto") -> dict:
    """``encode_array`` of a torch tensor (bfloat16 and other dtypes numpy lacks are refused)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        raise FormatError(f"tensor {name} has dtype {t.dtype}, which .netpress cannot hold")
    return encode_array(name, t.numpy(), streams, coder, index)


def decode_tensor(entry: dict, streams: list[bytes], max_elements: int) -> torch.Tensor:
    """``decode_array`` as a torch tensor; ``max_elements`` caps what it may allocate."""
    item = np.dtype(entry.get("dtype")).itemsize if isinstance(entry, dict) and \
        entry.get("dtype") in ("float32", "float64", "float16", "int64", "int32", "int16",
                               "int8", "uint8", "bool") else 1
    return torch.from_numpy(decode_array(entry, streams, max_elements * item))

"""Sparse storage of pruned weights: values + indices, as a real safetensors file.

A stop-gap until the compact ``.netpress`` artifact exists (its own issue), so that
pruning's saving can be measured on disk. Each tensor with at least one dimension of
2 or more is viewed as a matrix (rows = first dimension) and stored in CSR form when
that is smaller than dense:

- ``<name>.values``  — the nonzero values, in the tensor's dtype;
- ``<name>.cols``    — their column indices, int16 when columns < 32,768 else int32;
- ``<name>.rowptr``  — int32 row offsets into values (rows + 1 entries);
- ``<name>.shape``   — int64, the original shape.

Everything else (biases, BatchNorm statistics, dense-enough weights) is stored as is.
The header metadata says ``format=netpress-sparse/1``. Plain CSR, no relative
indexing or entropy coding: those belong to the Deep Compression encoders.
"""

from __future__ import annotations

import os

import torch

from ...errors import FormatError
from ...io import load_weights, safetensors_bytes, write_bytes

SPARSE_FORMAT = "netpress-sparse/1"
_SUFFIXES = (".values", ".cols", ".rowptr", ".shape")


def csr_encode(t: torch.Tensor) -> dict[str, torch.Tensor]:
    """CSR parts of ``t`` viewed as (shape[0], rest).

    Example:
        >>> p = csr_encode(torch.tensor([[0.0, 2.0], [3.0, 0.0]]))
        >>> p["values"].tolist(), p["cols"].tolist(), p["rowptr"].tolist()
        ([2.0, 3.0], [1, 0], [0, 1, 2])
    """
    mat = t.detach().reshape(t.shape[0], -1)
    nz = mat != 0
    rows, cols = nz.nonzero(as_tuple=True)
    col_dtype = torch.int16 if mat.shape[1] < 2**15 else torch.int32
    rowptr = torch.zeros(mat.shape[0] + 1, dtype=torch.int32)
    rowptr[1:] = torch.cumsum(nz.sum(1), 0).to(torch.int32)
    return {"values": mat[rows, cols].contiguous(), "cols": cols.to(col_dtype),
            "rowptr": rowptr, "shape": torch.tensor(list(t.shape), dtype=torch.int64)}


def csr_decode(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    """Inverse of ``csr_encode``.

    Example:
        >>> t = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
        >>> torch.equal(csr_decode(csr_encode(t)), t)
        True
    """
    shape = [int(s) for s in parts["shape"].tolist()]
    rowptr = parts["rowptr"].to(torch.int64)
    n_rows = shape[0]
    n_cols = 1
    for s in shape[1:]:
        n_cols *= s
    values, cols = parts["values"], parts["cols"].to(torch.int64)
    if rowptr.numel() != n_rows + 1 or int(rowptr[-1]) != values.numel() \
            or cols.numel() != values.numel() or bool((rowptr[1:] < rowptr[:-1]).any()) \
            or (cols.numel() and (int(cols.min()) < 0 or int(cols.max()) >= n_cols)):
        raise FormatError("sparse tensor is inconsistent (row offsets, columns and values "
                          "disagree); the file is corrupt — re-create it")
    rows = torch.repeat_interleave(torch.arange(n_rows), rowptr[1:] - rowptr[:-1])
    out = torch.zeros(n_rows, n_cols, dtype=values.dtype)
    out[rows, cols] = values
    return out.reshape(shape)


def _csr_bytes(t: torch.Tensor) -> int:
    nnz = int(torch.count_nonzero(t))
    col_bytes = 2 if t.reshape(t.shape[0], -1).shape[1] < 2**15 else 4
    return nnz * (t.element_size() + col_bytes) + (t.shape[0] + 1) * 4 + 8 * t.dim()


def sparse_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of the sparse file: CSR parts where smaller, dense tensors otherwise."""
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if t.dim() >= 2 and t.is_floating_point() and _csr_bytes(t) < t.numel() * t.element_size():
            for k, v in csr_encode(t).items():
                out[f"{name}.{k}"] = v
        else:
            out[name] = t.detach().contiguous()
    return out


def save_sparse(state: dict[str, torch.Tensor], path: str | os.PathLike,
                metadata: dict[str, str] | None = None) -> int:
    """Write ``state`` sparsely (atomic); returns the file's size in bytes.

    Example:
        >>> save_sparse({"w": torch.zeros(100, 100)}, "w.sparse.safetensors")  # doctest: +SKIP
        ...
    """
    meta = {"format": SPARSE_FORMAT, **(metadata or {})}
    data = safetensors_bytes(sparse_state(state), meta)
    write_bytes(path, data)
    return len(data)


def load_sparse(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a file written by ``save_sparse`` back into dense tensors."""
    raw = load_weights(path)
    out: dict[str, torch.Tensor] = {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in raw.items():
        base, dot, part = key.rpartition(".")
        if dot and "." + part in _SUFFIXES:
            groups.setdefault(base, {})[part] = t
        else:
            out[key] = t
    for base, parts in groups.items():
        if set(parts) != {s[1:] for s in _SUFFIXES}:
            # a plain tensor whose name merely ends like a CSR part
            out.update({f"{base}.{k}": v for k, v in parts.items()})
            continue
        out[base] = csr_decode(parts)
    return out

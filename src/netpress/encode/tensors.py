"""Per-tensor encodings of a baked state dict: raw, or shared (codebook + sparse + coded).

A weight with at most 256 distinct nonzero values (what ``WeightShare`` leaves after
``bake``) is stored as

- its codebook: the sorted distinct nonzero values, float32 little-endian;
- its positions: none when every element is nonzero ("dense"), else relative-index
  gap symbols (entropy-coded, with the gap width whose coded stream is smallest) or a
  bitmap, whichever costs fewer bytes;
- its values: one codebook index per nonzero, in position order, entropy-coded.

Anything else (biases left in fp32, integer buffers) is stored raw, little-endian.
The header entry of a tensor names its streams by number; ``decode_tensor`` checks
every count against the declared shape before it allocates. The values decoded are
bit-for-bit those encoded, so a loaded model reproduces the compressed one exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from ..errors import FormatError
from .ans import ans_decode, ans_encode
from .huffman import huffman_decode, huffman_encode
from .sparse import (
    bitmap_decode,
    bitmap_encode,
    relative_index_decode,
    relative_index_encode,
)

Coder = Literal["auto", "ans", "huffman"]
IndexKind = Literal["auto", "relative", "bitmap"]
CODERS: dict[str, tuple[Callable, Callable]] = {
    "ans": (ans_encode, ans_decode),
    "huffman": (huffman_encode, huffman_decode),
}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
          "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}
MAX_CODEBOOK = 256
GAP_BITS = range(1, 13)  # relative-index gap widths tried per tensor


def _add(streams: list[bytes], data: bytes) -> int:
    streams.append(data)
    return len(streams) - 1


def code_stream(symbols: np.ndarray, alphabet: int, coder: Coder,
                streams: list[bytes]) -> dict:
    """Entropy-code ``symbols`` into a new stream; returns its header entry.
    ``coder="auto"`` keeps whichever of ANS and Huffman is smaller (table included).

    Example:
        >>> s = []
        >>> code_stream(np.array([0, 1, 1]), 2, "huffman", s)
        {'stream': 0, 'coder': 'huffman', 'alphabet': 2, 'symbols': 3, 'table_bytes': 1}
    """
    names = list(CODERS) if coder == "auto" else [coder]
    if alphabet <= 1:  # a constant tensor (e.g. a fresh LayerNorm): Huffman stores it in a
        names = ["huffman"]  # one-byte table and no payload; ANS has no one-symbol model
    coded = [(CODERS[c][0](symbols, alphabet), c) for c in names]
    (table, payload), name = min(coded, key=lambda x: len(x[0][0]) + len(x[0][1]))
    return {"stream": _add(streams, table + payload), "coder": name, "alphabet": int(alphabet),
            "symbols": int(symbols.size), "table_bytes": len(table)}


def _int(entry: dict, key: str, lo: int, hi: int) -> int:
    v = entry.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise FormatError(f"header field {key!r} is {v!r}; expected an integer in [{lo}, {hi}]")
    return v


def _stream(entry: dict, streams: list[bytes]) -> bytes:
    return streams[_int(entry, "stream", 0, len(streams) - 1)]


def decode_stream(entry: dict, streams: list[bytes], max_symbols: int) -> np.ndarray:
    """Decode a coded stream described by ``entry`` (at most ``max_symbols`` symbols).

    Example:
        >>> s = []
        >>> decode_stream(code_stream(np.array([2, 0, 2]), 3, "ans", s), s, 10).tolist()
        [2, 0, 2]
    """
    if not isinstance(entry, dict) or entry.get("coder") not in CODERS:
        raise FormatError(f"unknown stream coder in {entry!r}")
    data = _stream(entry, streams)
    n = _int(entry, "symbols", 0, max_symbols)
    alphabet = _int(entry, "alphabet", 1, 1 << 16)
    t = _int(entry, "table_bytes", 0, len(data))
    out = CODERS[entry["coder"]][1](data[:t], data[t:], n, alphabet)
    if out.size != n or (n and (out.min() < 0 or out.max() >= alphabet)):
        raise FormatError("decoded stream does not match its header")
    return out


def _raw(entry: dict, t: torch.Tensor, streams: list[bytes]) -> dict:
    if t.dtype not in NAMES:
        raise FormatError(f"tensor {entry['name']} has dtype {t.dtype}, which .netpress "
                          "cannot hold")
    arr = t.numpy()
    entry.update(encoding="raw", stream=_add(streams, arr.astype(arr.dtype.newbyteorder("<"),
                                                                 copy=False).tobytes()))
    return entry


def _shared(entry: dict, flat: np.ndarray, nz: np.ndarray, book: np.ndarray, coder: Coder,
            index: IndexKind, streams: list[bytes]) -> dict:
    entry.update(encoding="shared", nonzero=int(nz.size))
    entry["codebook"] = {"stream": _add(streams, book.astype("<f4").tobytes()),
                         "size": int(book.size)}
    if nz.size == flat.size:
        entry["positions"] = {"kind": "dense"}
    else:
        # the gap width whose coded stream, table included, is smallest: a wide gap
        # alphabet has fewer fillers but a longer table
        best: tuple[int, int, dict, list[bytes]] | None = None
        for k in GAP_BITS:
            trial: list[bytes] = []
            e = code_stream(relative_index_encode(nz, k), 1 << k, coder, trial)
            if best is None or len(trial[0]) < best[0]:
                best = (len(trial[0]), k, e, trial)
        _, k, rel, rel_streams = best
        bitmap = bitmap_encode(flat != 0)
        sizes = {"relative": len(rel_streams[0]), "bitmap": len(bitmap)}
        kind = index if index != "auto" else min(sizes, key=lambda s: (sizes[s], s))
        if kind == "relative":
            rel["stream"] = _add(streams, rel_streams[0])
            entry["positions"] = {"kind": "relative", "gap_bits": k, **rel}
        else:
            entry["positions"] = {"kind": "bitmap", "stream": _add(streams, bitmap)}
        entry["positions"]["candidate_bytes"] = sizes
    labels = np.searchsorted(book, flat[nz])
    entry["values"] = code_stream(labels, max(1, book.size), coder, streams)
    return entry


def encode_tensor(name: str, t: torch.Tensor, streams: list[bytes], coder: Coder = "ans",
                  index: IndexKind = "auto") -> dict:
    """Encode one tensor, appending its streams; returns its header entry.

    A float32 tensor with at most 256 distinct nonzero values is stored "shared" when
    that is smaller than raw; everything else raw.

    Example:
        >>> s = []
        >>> e = encode_tensor("w", torch.tensor([[0.0, 0.5, 0.0, -1.0] * 16]), s)
        >>> e["encoding"], e["nonzero"], e["positions"]["kind"]
        ('shared', 32, 'relative')
    """
    t = t.detach().cpu().contiguous()
    entry: dict = {"name": name, "shape": list(t.shape), "dtype": NAMES.get(t.dtype, "?")}
    if t.dtype == torch.float32:
        flat = t.reshape(-1).numpy()
        nz = np.flatnonzero(flat != 0)
        book = np.unique(flat[nz])
        if book.size <= MAX_CODEBOOK and np.isfinite(book).all():
            trial: list[bytes] = []
            shared = _shared(dict(entry), flat, nz, book, coder, index, trial)
            if sum(map(len, trial)) < flat.size * 4:
                return _renumber(shared, len(streams), trial, streams)
    return _raw(entry, t, streams)


def _renumber(entry: dict, base: int, trial: list[bytes], streams: list[bytes]) -> dict:
    """Move ``trial`` streams to the end of ``streams``, shifting the entry's numbers."""
    for part in (entry, entry.get("codebook"), entry.get("positions"), entry.get("values")):
        if isinstance(part, dict) and "stream" in part:
            part["stream"] += base
    streams.extend(trial)
    return entry


def decode_tensor(entry: dict, streams: list[bytes], max_elements: int) -> torch.Tensor:
    """Rebuild one tensor from its header entry; ``max_elements`` caps what it may allocate.

    Example:
        >>> s = []
        >>> w = torch.tensor([[0.0, 0.5], [0.5, -1.0]])
        >>> torch.equal(decode_tensor(encode_tensor("w", w, s), s, 100), w)
        True
    """
    if not isinstance(entry, dict):
        raise FormatError("tensor entry is not an object")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape):
        raise FormatError(f"tensor {entry.get('name')!r} has a bad shape {shape!r}")
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if numel > max_elements:
        raise FormatError(f"tensor {entry.get('name')!r} declares {numel} elements, more than "
                          f"this file may hold ({max_elements})")
    dtype = DTYPES.get(entry.get("dtype"))
    if dtype is None:
        raise FormatError(f"unknown dtype {entry.get('dtype')!r}")
    if entry.get("encoding") == "raw":
        data = _stream(entry, streams)
        item = torch.empty(0, dtype=dtype).element_size()
        if len(data) != numel * item:
            raise FormatError(f"raw tensor {entry.get('name')!r} has {len(data)} bytes, "
                              f"expected {numel * item}")
        arr = np.frombuffer(data, dtype=np.dtype(str(dtype).split(".")[1]).newbyteorder("<"))
        return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="))).reshape(shape)
    if entry.get("encoding") != "shared" or dtype != torch.float32:
        raise FormatError(f"unknown encoding {entry.get('encoding')!r}")
    nnz = _int(entry, "nonzero", 0, numel)
    book_entry = entry.get("codebook") or {}
    size = _int(book_entry, "size", 0, MAX_CODEBOOK)
    raw_book = _stream(book_entry, streams)
    if len(raw_book) != 4 * size:
        raise FormatError("codebook stream length does not match its size")
    book = np.frombuffer(raw_book, dtype="<f4")
    pos_entry = entry.get("positions") or {}
    kind = pos_entry.get("kind")
    if kind == "dense":
        if nnz != numel:
            raise FormatError("a dense tensor must have every element nonzero")
        pos = np.arange(numel)
    elif kind == "bitmap":
        pos = np.flatnonzero(bitmap_decode(_stream(pos_entry, streams), numel))
    elif kind == "relative":
        k = _int(pos_entry, "gap_bits", 1, 16)
        if pos_entry.get("alphabet") != 1 << k:
            raise FormatError("gap alphabet does not match gap_bits")
        pos = relative_index_decode(decode_stream(pos_entry, streams, numel), k, numel)
    else:
        raise FormatError(f"unknown positions kind {kind!r}")
    if pos.size != nnz:
        raise FormatError(f"tensor {entry.get('name')!r}: {pos.size} positions, header says {nnz}")
    labels = decode_stream(entry.get("values") or {}, streams, nnz)
    if labels.size != nnz or (nnz and labels.max() >= size):
        raise FormatError("codebook indices do not match the codebook")
    out = np.zeros(numel, dtype=np.float32)
    out[pos] = book[labels]
    return torch.from_numpy(out).reshape(shape)

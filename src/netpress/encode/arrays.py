"""Per-array encodings of a ``.netpress`` file, in numpy alone (no torch).

Every array the file holds (a graph's initializers: weights, biases, quantized codes,
shape constants) is stored as one of:

- ``raw``: the elements in C order, little-endian;
- ``half`` (float32): the elements as float16, when every one is exactly a float16 (the
  fp16-rounded scales of a quantized weight): half the bytes, decoded exactly;
- ``shared`` (float32): a weight with at most 256 distinct nonzero values (what
  ``WeightShare`` leaves after ``bake``) as its codebook (the sorted distinct nonzero
  values), its positions (none when every element is nonzero, else entropy-coded
  relative-index gaps or a bitmap, whichever is smaller) and one entropy-coded codebook
  index per nonzero;
- ``coded`` (uint8 / int8): the bytes as entropy-coded symbols — whole bytes, or their
  two 4-bit halves (``nibbles``: the packed codes of a 4-bit ``MatMulNBits`` weight) —
  in chunks of at most ``CHUNK`` symbols, each with its own Huffman table, so decoding
  memory stays bounded and needs no library beyond numpy.

The writer keeps whichever encoding is smallest. ``decode_array`` checks every count
against the declared shape and the caller's element budget before it allocates; the
values decoded are bit-for-bit those encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from ..errors import FormatError
from .huffman import huffman_decode, huffman_encode
from .sparse import (
    bitmap_decode,
    bitmap_encode,
    relative_index_decode,
    relative_index_encode,
)

Coder = Literal["auto", "ans", "huffman"]
IndexKind = Literal["auto", "relative", "bitmap"]
DTYPES = ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
MAX_CODEBOOK = 256
GAP_BITS = range(1, 13)  # relative-index gap widths tried per tensor
CHUNK = 1 << 20  # symbols per Huffman chunk of a coded array


def _ans_encode(symbols: np.ndarray, alphabet: int):
    from .ans import ans_encode

    return ans_encode(symbols, alphabet)


def _ans_decode(table: bytes, payload: bytes, n: int, alphabet: int) -> np.ndarray:
    """ANS streams decode with ``constriction`` when it is installed, else with netpress's
    own numpy decoder of the same bits (``runtime.ans_decode``; slower, ~1 µs a symbol)."""
    try:
        from .ans import ans_decode
    except ImportError:
        from ..runtime.ans_decode import ans_decode_np as ans_decode
    return ans_decode(table, payload, n, alphabet)


CODERS: dict[str, tuple[Callable, Callable]] = {
    "ans": (_ans_encode, _ans_decode),
    "huffman": (huffman_encode, huffman_decode),
}


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
    v = entry.get(key) if isinstance(entry, dict) else None
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
    coder = entry.get("coder") if isinstance(entry, dict) else None
    if not isinstance(coder, str) or coder not in CODERS:
        raise FormatError(f"unknown stream coder in {entry!r}")
    data = _stream(entry, streams)
    n = _int(entry, "symbols", 0, max_symbols)
    alphabet = _int(entry, "alphabet", 1, 1 << 16)
    t = _int(entry, "table_bytes", 0, len(data))
    try:
        out = CODERS[entry["coder"]][1](data[:t], data[t:], n, alphabet)
    except FormatError:
        raise
    except ValueError as e:  # netpress's own ANS decoder (no constriction installed)
        raise FormatError(f"ANS payload cannot be decoded ({e})") from e
    if out.size != n or (n and (out.min() < 0 or out.max() >= alphabet)):
        raise FormatError("decoded stream does not match its header")
    return out


def _raw(entry: dict, arr: np.ndarray, streams: list[bytes]) -> dict:
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
    labels = np.searchsorted(book, flat[nz])
    entry["values"] = code_stream(labels, max(1, book.size), coder, streams)
    return entry


def _symbols(arr: np.ndarray, nibbles: bool) -> np.ndarray:
    b = arr.reshape(-1).view(np.uint8)
    if not nibbles:
        return b.astype(np.int64)
    out = np.empty(2 * b.size, dtype=np.int64)
    out[0::2], out[1::2] = b & 15, b >> 4
    return out


def _coded(entry: dict, arr: np.ndarray, streams: list[bytes]) -> dict:
    """The smaller of byte and nibble symbols, each chunk Huffman-coded."""
    best: tuple[int, bool, list[dict], list[bytes]] | None = None
    for nibbles in (False, True):
        sym = _symbols(arr, nibbles)
        trial: list[bytes] = []
        chunks = [code_stream(sym[i:i + CHUNK], 16 if nibbles else 256, "huffman", trial)
                  for i in range(0, sym.size, CHUNK)]
        size = sum(map(len, trial))
        if best is None or size < best[0]:
            best = (size, nibbles, chunks, trial)
    _, nibbles, chunks, trial = best
    base = len(streams)
    for c in chunks:
        c["stream"] += base
    streams.extend(trial)
    entry.update(encoding="coded", nibbles=nibbles, chunks=chunks)
    return entry


def encode_array(name: str, arr: np.ndarray, streams: list[bytes], coder: Coder = "ans",
                 index: IndexKind = "auto") -> dict:
    """Encode one array, appending its streams; returns its header entry: the smallest of
    raw, shared (float32 with at most 256 distinct nonzero values) and coded (uint8/int8).

    Example:
        >>> s = []
        >>> e = encode_array("w", np.array([[0.0, 0.5, 0.0, -1.0] * 16], np.float32), s)
        >>> e["encoding"], e["nonzero"], e["positions"]["kind"]
        ('shared', 32, 'relative')
    """
    arr = arr if arr.flags.c_contiguous else arr.copy(order="C")
    dtype = arr.dtype.name
    if dtype not in DTYPES:
        raise FormatError(f"tensor {name} has dtype {dtype}, which .netpress cannot hold")
    entry: dict = {"name": name, "shape": list(arr.shape), "dtype": dtype}
    trial: list[bytes] = []
    if dtype == "float32":
        flat = arr.reshape(-1)
        nz = np.flatnonzero(flat != 0)
        book = np.unique(flat[nz])
        if book.size <= MAX_CODEBOOK and np.isfinite(book).all():
            shared = _shared(dict(entry), flat, nz, book, coder, index, trial)
            if sum(map(len, trial)) < arr.nbytes // 2:
                return _renumber(shared, len(streams), trial, streams)
        with np.errstate(over="ignore"):  # values beyond fp16's range are simply not exact
            half = arr.astype("<f2")
        if np.array_equal(half.astype(np.float32), arr):  # exact in fp16 (e.g. fp16-rounded scales)
            entry.update(encoding="half", stream=_add(streams, half.tobytes()))
            return entry
        if trial and sum(map(len, trial)) < arr.nbytes:
            return _renumber(shared, len(streams), trial, streams)
    elif dtype in ("uint8", "int8") and arr.size >= 64:
        coded = _coded(dict(entry), arr, trial)
        if sum(map(len, trial)) < arr.nbytes:
            return _renumber(coded, len(streams), trial, streams)
    return _raw(entry, arr, streams)


def _renumber(entry: dict, base: int, trial: list[bytes], streams: list[bytes]) -> dict:
    """Move ``trial`` streams to the end of ``streams``, shifting the entry's numbers."""
    parts = [entry, entry.get("codebook"), entry.get("positions"), entry.get("values"),
             *entry.get("chunks", [])]
    for part in parts:
        if isinstance(part, dict) and "stream" in part:
            part["stream"] += base
    streams.extend(trial)
    return entry


def _shape(entry: dict) -> tuple[list[int], int]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape):
        raise FormatError(f"tensor {entry.get('name')!r} has a bad shape {shape!r}")
    numel = 1
    for d in shape:
        numel *= d
    return shape, numel


def declared_bytes(entry: dict) -> int:
    """What decoding ``entry`` allocates for its result: elements × item size.

    Example:
        >>> declared_bytes({"shape": [3, 4], "dtype": "float32"})
        48
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str) or \
            entry["dtype"] not in DTYPES:
        raise FormatError(f"unknown dtype {entry.get('dtype') if isinstance(entry, dict) else None!r}")
    return _shape(entry)[1] * np.dtype(entry["dtype"]).itemsize


def decode_array(entry: dict, streams: list[bytes], max_bytes: int) -> np.ndarray:
    """Rebuild one array from its header entry; ``max_bytes`` caps what it may allocate.

    Example:
        >>> s = []
        >>> w = np.array([[0.0, 0.5], [0.5, -1.0]], np.float32)
        >>> np.array_equal(decode_array(encode_array("w", w, s), s, 100), w)
        True
    """
    if not isinstance(entry, dict):
        raise FormatError("tensor entry is not an object")
    nbytes = declared_bytes(entry)
    shape, numel = _shape(entry)
    if nbytes > max_bytes:
        raise FormatError(f"tensor {entry.get('name')!r} declares {nbytes} bytes, more than "
                          f"this file may make a reader allocate ({max_bytes} left)")
    dtype = np.dtype(entry["dtype"])
    enc = entry.get("encoding")
    if enc == "raw":
        data = _stream(entry, streams)
        if len(data) != nbytes:
            raise FormatError(f"raw tensor {entry.get('name')!r} has {len(data)} bytes, "
                              f"expected {nbytes}")
        arr = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
        if dtype == np.bool_ and arr.size and arr.view(np.uint8).max() > 1:
            raise FormatError(f"bool tensor {entry.get('name')!r} holds a byte other than 0/1")
        return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
    if enc == "half" and dtype == np.float32:
        data = _stream(entry, streams)
        if len(data) != 2 * numel:
            raise FormatError(f"half tensor {entry.get('name')!r} has {len(data)} bytes, "
                              f"expected {2 * numel}")
        return np.frombuffer(data, dtype="<f2").astype(np.float32).reshape(shape)
    if enc == "coded" and dtype in (np.uint8, np.int8):
        return _decode_coded(entry, streams, numel, dtype).reshape(shape)
    if enc != "shared" or dtype != np.float32:
        raise FormatError(f"unknown encoding {enc!r} for a {dtype} tensor")
    return _decode_shared(entry, streams, numel).reshape(shape)


def _decode_coded(entry: dict, streams: list[bytes], numel: int, dtype) -> np.ndarray:
    nibbles = entry.get("nibbles")
    if not isinstance(nibbles, bool):
        raise FormatError("coded tensor has no nibbles flag")
    chunks = entry.get("chunks")
    total = 2 * numel if nibbles else numel
    if not isinstance(chunks, list) or len(chunks) != -(-total // CHUNK):
        raise FormatError(f"coded tensor {entry.get('name')!r} needs {-(-total // CHUNK)} chunks")
    out = np.empty(total, dtype=np.uint8)
    pos = 0
    for c in chunks:
        if not isinstance(c, dict) or c.get("coder") != "huffman" or \
                c.get("alphabet") != (16 if nibbles else 256):
            raise FormatError("a coded tensor's chunk is not a Huffman stream of its alphabet")
        want = min(CHUNK, total - pos)
        sym = decode_stream(c, streams, want)
        if sym.size != want:
            raise FormatError(f"coded chunk has {sym.size} symbols, expected {want}")
        out[pos:pos + want] = sym
        pos += want
    if nibbles:
        out = out[0::2] | (out[1::2] << 4)
    return out.view(dtype)


def _decode_shared(entry: dict, streams: list[bytes], numel: int) -> np.ndarray:
    nnz = _int(entry, "nonzero", 0, numel)
    book_entry = entry.get("codebook") or {}
    size = _int(book_entry, "size", 0, MAX_CODEBOOK)
    raw_book = _stream(book_entry, streams)
    if len(raw_book) != 4 * size:
        raise FormatError("codebook stream length does not match its size")
    book = np.frombuffer(raw_book, dtype="<f4")
    pos_entry = entry.get("positions") or {}
    kind = pos_entry.get("kind") if isinstance(pos_entry, dict) else None
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
    return out

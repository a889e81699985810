"""Asymmetric numeral systems (ANS) coding of a symbol stream, via ``constriction``.

``constriction`` (Bamler, maintained, Rust core) provides a stack-based ANS coder
whose output comes within a few bits of ``n × cross-entropy``; we use it instead of
writing our own. What we add is the table: the symbol counts, stored as unsigned
LEB128 varints (one per symbol of the alphabet), from which encoder and decoder
build the *same* ``Categorical`` model (``perfect=False``: a deterministic fixed-point
approximation, same input floats → same model). Because the model is the stream's own
empirical distribution, the payload approaches the empirical entropy bound; the table
is the only other cost. The payload is constriction's 32-bit words, little-endian.

An empty stream has an empty table and payload. A stream of one distinct symbol still
goes through the coder (a handful of bytes): simple, and exact.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import FormatError


def varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 encoding of non-negative integers.

    Example:
        >>> varints(np.array([0, 1, 300])).hex()
        '0001ac02'
    """
    out = bytearray()
    for v in np.asarray(values, dtype=np.int64).tolist():
        while True:
            byte, v = v & 0x7F, v >> 7
            out.append(byte | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def read_varints(data: bytes, count: int) -> tuple[np.ndarray, int]:
    """Read ``count`` LEB128 integers; returns ``(values, bytes used)``.

    Example:
        >>> read_varints(bytes.fromhex('0001ac02'), 3)[0].tolist()
        [0, 1, 300]
    """
    vals, pos = [], 0
    for _ in range(count):
        v, shift = 0, 0
        while True:
            if pos >= len(data):
                raise FormatError("ANS table ends inside a count")
            b = data[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > 56:
                raise FormatError("ANS table count is too large")
        vals.append(v)
    return np.array(vals, dtype=np.int64), pos


def _model(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def ans_encode(symbols: np.ndarray, alphabet: int) -> tuple[bytes, bytes]:
    """Encode ``symbols`` (ints in ``[0, alphabet)``); returns ``(table, payload)``.

    Example:
        >>> table, payload = ans_encode(np.array([0, 1, 1, 1]), alphabet=2)
        >>> table.hex(), len(payload) % 4
        ('0103', 0)
    """
    s = np.asarray(symbols, dtype=np.int64).ravel()
    if s.size == 0:
        return b"", b""
    if s.min() < 0 or s.max() >= alphabet:
        raise ValueError(f"symbols must lie in [0, {alphabet})")
    counts = np.bincount(s, minlength=alphabet)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(s.astype(np.int32), _model(counts))
    words = coder.get_compressed().astype("<u4")
    return varints(counts), words.tobytes()


def ans_decode(table: bytes, payload: bytes, n: int, alphabet: int) -> np.ndarray:
    """Decode ``n`` symbols (int64) from ``ans_encode`` output.

    Example:
        >>> t, p = ans_encode(np.array([2, 0, 2]), alphabet=3)
        >>> ans_decode(t, p, 3, 3).tolist()
        [2, 0, 2]
    """
    if n == 0:
        if table or payload:
            raise FormatError("an empty ANS stream has table or payload bytes")
        return np.zeros(0, dtype=np.int64)
    counts, used = read_varints(table, alphabet)
    if used != len(table):
        raise FormatError("ANS table has bytes after the last count")
    if int(counts.sum()) != n:
        raise FormatError(f"ANS table counts {int(counts.sum())} symbols, header says {n}")
    if len(payload) % 4:
        raise FormatError("ANS payload is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        out = coder.decode(_model(counts), n)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise FormatError(f"ANS payload cannot be decoded ({e})") from e
    if not coder.is_empty():
        raise FormatError("ANS payload has data left after the last symbol")
    return np.asarray(out, dtype=np.int64)

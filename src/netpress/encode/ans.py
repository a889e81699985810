"""Asymmetric numeral systems (ANS) coding of a symbol stream, via ``constriction``.

``constriction`` (Bamler, maintained, Rust core) provides a stack-based ANS coder
whose output comes within a few bits of ``n × cross-entropy``; we use it instead of
writing our own. What we add is the table: the symbol counts, stored as order-0
exp-Golomb codes (one per symbol of the alphabet; ``pack_counts``), from which encoder and decoder
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


def pack_counts(counts: np.ndarray) -> bytes:
    """The count table: each count ``c`` as an order-0 exp-Golomb code of ``c + 1``
    (``2⌊log2(c + 1)⌋ + 1`` bits: 1 bit for an absent symbol, 3 for a count of 1 or 2),
    MSB first, zero-padded to a whole byte. Absent and rare symbols (the tail of a gap
    alphabet) cost 1–5 bits instead of a varint's 8; large counts cost about twice their
    bit length.

    Example:
        >>> pack_counts(np.array([0, 1, 300])).hex()
        'a00968'
    """
    bits: list[str] = []
    for c in np.asarray(counts, dtype=np.int64).tolist():
        v = bin(c + 1)[2:]
        bits.append("0" * (len(v) - 1) + v)
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def unpack_counts(data: bytes, count: int) -> np.ndarray:
    """Read ``count`` exp-Golomb counts; the table must end in its last byte.

    Example:
        >>> unpack_counts(bytes.fromhex('a00968'), 3).tolist()
        [0, 1, 300]
    """
    s = "".join(f"{b:08b}" for b in data)
    vals, pos = [], 0
    for _ in range(count):
        zeros = 0
        while pos < len(s) and s[pos] == "0":
            zeros += 1
            pos += 1
        if zeros > 40 or pos + zeros + 1 > len(s):
            raise FormatError("ANS count table is truncated or holds an impossible count")
        vals.append(int(s[pos:pos + zeros + 1], 2) - 1)
        pos += zeros + 1
    if -(-pos // 8) != len(data) or any(c == "1" for c in s[pos:]):
        raise FormatError("ANS count table has bytes after the last count")
    return np.array(vals, dtype=np.int64)


def _model(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def ans_encode(symbols: np.ndarray, alphabet: int) -> tuple[bytes, bytes]:
    """Encode ``symbols`` (ints in ``[0, alphabet)``); returns ``(table, payload)``.

    Example:
        >>> table, payload = ans_encode(np.array([0, 1, 1, 1]), alphabet=2)
        >>> table.hex(), len(payload) % 4
        ('44', 0)
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
    return pack_counts(counts), words.tobytes()


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
    counts = unpack_counts(table, alphabet)
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

"""Asymmetric numeral systems (ANS) coding of a symbol stream, via ``constriction``.

``constriction`` (Bamler, maintained, Rust core) provides a stack-based ANS coder
whose output comes within a few bits of ``n × cross-entropy``; we use it instead of
writing our own. What we add is the table, because on the streams of a compressed
model (10³–10⁵ symbols, alphabets of up to 256) the table, not the payload, decides
whether the stream lands within 1% of its entropy bound.

The table stores *rounded* symbol counts: each count is rounded to ``m + 1``
significant bits (``m`` chosen per stream, 0–15), numbered on that grid as a level
``z`` (0 = absent), and the levels are delta-coded symbol by symbol with signed
exp-Golomb codes of order ``g`` (0–3), because neighbouring symbols of a codebook or a
gap alphabet have similar counts. Encoder and decoder build the *same*
``Categorical`` model from the rounded counts (integers, exact as float64;
``perfect=False`` is a deterministic fixed-point approximation). Coarser counts cost
payload (a relative error δ costs about δ²/2 nats per symbol) and save table bits;
``ans_encode`` tries ``m = 0, 1, …`` until the rounded counts are exact (and every ``g``)
and keeps the smallest table + payload, so
long streams get near-exact counts and short ones a table of a few bits per symbol.
The payload is constriction's 32-bit words, little-endian.

An empty stream has an empty table and payload. A stream of one distinct symbol still
goes through the coder (a handful of bytes): simple, and exact.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import FormatError
from ..runtime.ans_decode import (  # noqa: F401 - unpack_counts is re-exported
    count_level,
    level_value,
    stream_counts,
    unpack_counts,
)

_MAX_M = 15  # 4 bits
_MAX_G = 3  # 2 bits
_MAX_COUNT_BITS = 40  # no rounded count above 2^40 (a tensor never holds that many)


def _max_level(m: int) -> int:
    return count_level(1 << _MAX_COUNT_BITS, m)


def _eg(u: int, g: int) -> str:
    v = bin(u + (1 << g))[2:]
    return "0" * (len(v) - 1 - g) + v


def _levels_bits(z: list[int], g: int) -> str:
    out, prev = [], 0
    for v in z:
        d = v - prev
        prev = v
        out.append(_eg(2 * d if d >= 0 else -2 * d - 1, g))
    return "".join(out)


def _to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def pack_counts(counts: np.ndarray, m: int, g: int | None = None) -> bytes:
    """The count table for ``counts`` rounded to ``m + 1`` significant bits: 4 bits
    ``m``, 2 bits ``g``, then per symbol the change of level from the previous symbol
    (zigzag: 0, −1, 1, −2 … → 0, 1, 2, 3 …) as an exp-Golomb code of order ``g``, MSB
    first, zero-padded to a whole byte. ``g=None`` picks the shortest order.

    Example:
        >>> pack_counts(np.array([0, 1, 300]), m=1).hex()
        '12c3e0'
    """
    z = [count_level(int(c), m) for c in np.asarray(counts, dtype=np.int64).tolist()]
    orders = range(_MAX_G + 1) if g is None else [g]
    best = min(((_levels_bits(z, k), k) for k in orders), key=lambda t: len(t[0]))
    return _to_bytes(f"{m:04b}{best[1]:02b}" + best[0])




def _model(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def _encode(s32: np.ndarray, counts: np.ndarray) -> bytes:
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(s32, _model(counts))
    return coder.get_compressed().astype("<u4").tobytes()


def ans_encode(symbols: np.ndarray, alphabet: int) -> tuple[bytes, bytes]:
    """Encode ``symbols`` (ints in ``[0, alphabet)``); returns ``(table, payload)``, the
    pair with the fewest bytes over every rounding ``m`` of the counts.

    Example:
        >>> table, payload = ans_encode(np.array([0, 1, 1, 1]), alphabet=2)
        >>> table.hex(), len(payload) % 4
        ('0194', 0)
    """
    s = np.asarray(symbols, dtype=np.int64).ravel()
    if s.size == 0:
        return b"", b""
    if s.min() < 0 or s.max() >= alphabet:
        raise ValueError(f"symbols must lie in [0, {alphabet})")
    counts = np.bincount(s, minlength=alphabet)
    s32 = s.astype(np.int32)
    best, seen = None, set()
    for m in range(_MAX_M + 1):
        rounded = np.array([level_value(count_level(c, m), m) if c else 0
                            for c in counts.tolist()], dtype=np.int64)
        key = rounded.tobytes()
        if key not in seen:
            seen.add(key)
            pair = (pack_counts(counts, m), _encode(s32, rounded))
            if best is None or len(pair[0]) + len(pair[1]) < len(best[0]) + len(best[1]):
                best = pair
        if np.array_equal(rounded, counts):
            break  # finer grids hold the same counts with longer codes
    return best


def ans_decode(table: bytes, payload: bytes, n: int, alphabet: int) -> np.ndarray:
    """Decode ``n`` symbols (int64) from ``ans_encode`` output.

    Example:
        >>> t, p = ans_encode(np.array([2, 0, 2]), alphabet=3)
        >>> ans_decode(t, p, 3, 3).tolist()
        [2, 0, 2]
    """
    counts = stream_counts(table, payload, n, alphabet)
    if counts is None:
        return np.zeros(0, dtype=np.int64)
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        out = coder.decode(_model(counts), n)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise FormatError(f"ANS payload cannot be decoded ({e})") from e
    if not coder.is_empty():
        raise FormatError("ANS payload has data left after the last symbol")
    return np.asarray(out, dtype=np.int64)

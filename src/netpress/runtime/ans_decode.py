"""Decode netpress's ANS streams with numpy alone, bit for bit as ``constriction`` does.

netpress writes its ``ans`` streams with ``constriction`` 0.5 (a Rust extension), but a
``.netpress`` file should load where only numpy is installed. This module re-implements
the two pieces of ``constriction`` that decoding needs, from its source:

- the model: ``Categorical(counts, perfect=False)`` quantizes to 24-bit frequencies by
  ``fast_quantized_cdf``: with ``k`` symbols, ``total`` the float64 sum of the counts and
  ``scale = (2^24 − k) / total``, symbol ``i`` starts at
  ``left[i] = trunc(cum_i · scale) + i`` (``cum_i`` the float64 sum of the counts before
  ``i``), and the last symbol ends at ``2^24``; every symbol, present or not, gets at
  least one slot (the model is "leaky");
- the coder: ``AnsCoder`` (32-bit words, 64-bit state) is a stack. Its words are read
  from the end: the last word (nonzero) is the state's top half, the one before its low
  half. A pop takes ``q = state mod 2^24``, the symbol ``s`` with
  ``left[s] ≤ q < left[s + 1]``, sets ``state = (state >> 24) · f[s] + q − left[s]``,
  and when the state falls below ``2^32`` shifts in the next word, if one is left. The
  stream is well formed when the state is 0 after the last pop.

``ans_decode_np`` has the contract of ``netpress.encode.ans.ans_decode`` and refuses the
same inputs, with ``ANSFormatError``. It pops exactly ``n`` symbols at O(log alphabet)
each, with a state that never exceeds 64 bits, so hostile input cannot make it loop.
"""

from __future__ import annotations

import bisect
import sys
from array import array

import numpy as np

from ..errors import FormatError

PRECISION = 24  # constriction's DefaultContiguousCategoricalEntropyModel
_TOTAL = 1 << PRECISION
_MASK = _TOTAL - 1
_WORD_BITS = 32
_REFILL_BELOW = 1 << 32  # 64-bit state minus a 32-bit word

_MAX_M = 15
_MAX_G = 3
_MAX_COUNT_BITS = 40
_MAX_ZEROS = 48
_MAX_CODE_BITS = 2 * _MAX_ZEROS + _MAX_G + 1


class ANSFormatError(FormatError, ValueError):
    """An ANS stream (table or payload) is truncated or corrupt."""


def level_value(z: int, m: int) -> int:
    k, small = z - 1, 1 << (m + 1)
    if k < small:
        return k + 1
    b, r = divmod(k - small, 1 << m)
    return ((1 << m) + r + 1) << (b + 1)


def count_level(c: int, m: int) -> int:
    if c <= 1 << (m + 1):
        return c
    e = c.bit_length() - (m + 1)
    t = (c + (1 << (e - 1))) >> e
    if t == 1 << m:
        t, e = 1 << (m + 1), e - 1
        if e == 0:
            return t
    return (1 << (m + 1)) + (e - 1) * (1 << m) + (t - (1 << m))


def unpack_counts(data: bytes, count: int) -> np.ndarray:
    """The rounded counts (int64) of a count table of ``count`` symbols, read as
    ``netpress.encode.ans.unpack_counts`` reads it and refused where it refuses.

    Example:
        >>> unpack_counts(bytes.fromhex('12c3e0'), 3).tolist()
        [0, 1, 256]
    """
    if len(data) > (6 + count * _MAX_CODE_BITS + 7) // 8:
        raise ANSFormatError(f"ANS count table of {len(data)} bytes is longer than {count} "
                             "symbols can need")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if bits.size < 6:
        raise ANSFormatError("ANS count table is shorter than its 6-bit header")
    powers = np.left_shift(1, np.arange(_MAX_CODE_BITS, -1, -1, dtype=np.int64))

    def value(a: int, b: int) -> int:  # bits a…b−1 as an unsigned integer, MSB first
        return int(bits[a:b].astype(np.int64) @ powers[powers.size - (b - a):])

    m, g = value(0, 4), value(4, 6)
    top, pos, prev, vals = count_level(1 << _MAX_COUNT_BITS, m), 6, 0, []
    for _ in range(count):
        window = bits[pos:pos + _MAX_ZEROS + 1]
        if not window.any():
            raise ANSFormatError("ANS count table is truncated or holds an impossible count")
        zeros = int(window.argmax())
        pos += zeros
        if pos + zeros + g + 1 > bits.size:
            raise ANSFormatError("ANS count table is truncated or holds an impossible count")
        u = value(pos, pos + zeros + g + 1) - (1 << g)
        pos += zeros + g + 1
        prev += u // 2 if u % 2 == 0 else -(u + 1) // 2
        if not 0 <= prev <= top:
            raise ANSFormatError(f"ANS count table holds a count level {prev} outside 0…{top}")
        vals.append(level_value(prev, m) if prev else 0)
    if -(-pos // 8) != len(data) or bits[pos:].any():
        raise ANSFormatError("ANS count table has bytes after the last count")
    return np.array(vals, dtype=np.int64)


def _left_cumulatives(counts: np.ndarray) -> list[int]:
    """``left[0 … k]`` of constriction's ``fast_quantized_cdf`` (``left[k] = 2^24``)."""
    vals = np.asarray(counts, dtype=np.float64).ravel().tolist()
    k = len(vals)
    if k < 2 or k >= _TOTAL - 1:
        raise ANSFormatError(f"an ANS model needs 2 … {_TOTAL - 2} symbols, not {k}")
    if not all(0.0 <= v < float("inf") for v in vals):
        raise ANSFormatError("ANS counts must be finite and nonnegative")
    total = 0.0
    for v in vals:  # left to right, as Rust's Sum: the same float64 roundings
        total += v
    if not total >= sys.float_info.min or total == float("inf"):  # Rust: is_normal, positive
        raise ANSFormatError("ANS counts do not sum to a positive normal number")
    scale = float(_TOTAL - k) / total
    left, cum = [], 0.0
    for i, v in enumerate(vals):
        left.append(int(cum * scale) + i)  # `as u32` truncates; cum·scale < 2^24 here
        cum += v
    left.append(_TOTAL)
    return left


def quantized_frequencies(counts: np.ndarray) -> np.ndarray:
    """The integer frequencies (int64, summing to 2^24, all ≥ 1) that
    ``constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)``
    codes with. ``counts`` must be finite, nonnegative, not all zero, 2 … 2^24 − 2 of them.

    Example:
        >>> quantized_frequencies(np.array([0, 1, 3])).tolist()
        [1, 4194304, 12582911]
    """
    return np.diff(np.array(_left_cumulatives(counts), dtype=np.int64))


def stream_counts(table: bytes, payload: bytes, n: int, alphabet: int) -> np.ndarray | None:
    """The checks every ANS decoder makes before decoding: the table's counts, or None for
    an empty stream (``n`` = 0, no table and no payload).

    Example:
        >>> stream_counts(b"", b"", 0, 4) is None
        True
    """
    if n == 0:
        if table or payload:
            raise ANSFormatError("an empty ANS stream has table or payload bytes")
        return None
    counts = unpack_counts(table, alphabet)
    present = int(np.count_nonzero(counts))
    if not 1 <= present <= n:
        raise ANSFormatError(f"ANS table has {present} symbols present in a stream of {n}")
    if len(payload) % 4:
        raise ANSFormatError("ANS payload is not a whole number of 32-bit words")
    return counts


def ans_decode_np(table: bytes, payload: bytes, n: int, alphabet: int) -> np.ndarray:
    """Decode ``n`` symbols (int64) from ``netpress.encode.ans.ans_encode`` output,
    exactly as ``netpress.encode.ans.ans_decode`` does, without ``constriction``.

    Example:
        >>> ans_decode_np(bytes.fromhex('0194'), bytes.fromhex('00000003'), 4, 2).tolist()
        [0, 1, 1, 1]
    """
    counts = stream_counts(table, payload, n, alphabet)
    if counts is None:
        return np.zeros(0, dtype=np.int64)
    words = np.frombuffer(payload, dtype="<u4").tolist()
    if words and words[-1] == 0:
        raise ANSFormatError("ANS payload cannot be decoded (it ends in a zero word)")
    left = _left_cumulatives(counts)
    k = len(left) - 1
    starts = left[:-1]
    freqs = [left[i + 1] - left[i] for i in range(k)]

    pos, state = len(words), 0  # the words are a stack: its top is the payload's end
    if pos:
        pos -= 1
        state = words[pos]
        if pos:
            pos -= 1
            state = (state << _WORD_BITS) | words[pos]

    out = bytearray(n) if k <= 256 else array("i", bytes(4 * n))
    find, mask, refill = bisect.bisect_right, _MASK, _REFILL_BELOW
    for i in range(n):  # state < 2^64 throughout: (state >> 24) < 2^40, f ≤ 2^24
        q = state & mask
        s = find(starts, q) - 1
        state = (state >> PRECISION) * freqs[s] + q - starts[s]
        if state < refill and pos:
            pos -= 1
            state = (state << _WORD_BITS) | words[pos]
        out[i] = s
    if state:
        raise ANSFormatError("ANS payload has data left after the last symbol")
    return np.frombuffer(out, dtype=np.uint8 if k <= 256 else np.int32).astype(np.int64)

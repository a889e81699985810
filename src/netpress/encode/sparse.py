"""Sparse positions: relative-index (gap) coding and bitmaps, as pure array maths.

Relative indexing (Han et al. 2016, section 2): the flat positions of the nonzeros
are stored as gaps of ``k`` bits. A gap too large for ``k`` bits is bridged by
*filler* symbols. The paper stores a filler as an extra entry whose weight is zero,
which costs a codebook index too; here the largest symbol ``2**k - 1`` is reserved as
the filler and means "skip ``2**k - 1`` positions, no weight here", so a filler costs
only its ``k`` gap bits. Symbols ``0 .. 2**k - 2`` mean "the next nonzero is
``symbol + 1`` positions after the previous one" (the first counts from position -1).

We write this ourselves: no maintained library implements it, and it is a few lines
of vectorised numpy. The bitmap alternative is one bit per position
(``numpy.packbits``); the encoder stores whichever is smaller per layer.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError


def relative_index_encode(positions: np.ndarray, k: int) -> np.ndarray:
    """Gap symbols (uint16) of sorted, distinct flat ``positions`` with ``k``-bit gaps.

    Example:
        >>> relative_index_encode(np.array([1, 2, 12]), k=3).tolist()
        [1, 0, 7, 2]
    """
    if not 1 <= k <= 16:
        raise ValueError(f"gap bits k={k} must be 1..16")
    p = np.asarray(positions, dtype=np.int64)
    if p.size == 0:
        return np.zeros(0, dtype=np.uint16)
    gaps = np.diff(p, prepend=-1)
    if (gaps < 1).any():
        raise ValueError("positions must be sorted and distinct")
    filler = (1 << k) - 1
    fills = (gaps - 1) // filler  # fillers needed before each real entry
    rest = gaps - fills * filler  # 1 .. filler
    out = np.full(int(p.size + fills.sum()), filler, dtype=np.uint16)
    out[np.cumsum(fills + 1) - 1] = (rest - 1).astype(np.uint16)
    return out


def relative_index_decode(symbols: np.ndarray, k: int, size: int | None = None) -> np.ndarray:
    """Flat positions (int64) from gap symbols; with ``size``, check they fit in it.

    Example:
        >>> relative_index_decode(np.array([1, 0, 7, 2]), k=3).tolist()
        [1, 2, 12]
    """
    s = np.asarray(symbols, dtype=np.int64)
    filler = (1 << k) - 1
    if s.size and (s.min() < 0 or s.max() > filler):
        raise FormatError(f"gap symbol out of range for {k}-bit gaps")
    step = np.where(s == filler, filler, s + 1)
    pos = np.cumsum(step) - 1
    pos = pos[s != filler]
    if size is not None and pos.size and pos[-1] >= size:
        raise FormatError(f"sparse positions run past the tensor's {size} elements")
    return pos


def bitmap_encode(mask: np.ndarray) -> bytes:
    """One bit per position, little-endian bit order within a byte.

    Example:
        >>> bitmap_encode(np.array([True, False, False, True])).hex()
        '09'
    """
    return np.packbits(np.asarray(mask, dtype=bool).ravel(), bitorder="little").tobytes()


def bitmap_decode(data: bytes, size: int) -> np.ndarray:
    """Boolean mask of ``size`` positions from ``bitmap_encode`` output.

    Example:
        >>> bitmap_decode(bytes([9]), 4).tolist()
        [True, False, False, True]
    """
    if len(data) != (size + 7) // 8:
        raise FormatError(f"bitmap has {len(data)} bytes; {size} positions need {(size + 7) // 8}")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=size, bitorder="little")
    return bits.astype(bool)


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical Shannon entropy of ``symbols`` in bits per symbol (0 for < 2 kinds).

    Example:
        >>> entropy_bits(np.array([0, 1, 2, 3]))
        2.0
    """
    s = np.asarray(symbols).ravel()
    if s.size == 0:
        return 0.0
    counts = np.bincount(s.astype(np.int64))
    p = counts[counts > 0] / s.size
    return float(max(0.0, -(p * np.log2(p)).sum()))


def best_gap_bits(positions: np.ndarray, candidates: range = range(1, 13)) -> int:
    """The gap width ``k`` whose symbol stream has the smallest entropy bound
    (symbols × entropy), i.e. the cheapest once entropy-coded.

    Example:
        >>> best_gap_bits(np.arange(0, 4000, 4))  # every gap is 4: symbol 3 in 3 bits
        3
    """
    best, best_cost = candidates[0], float("inf")
    for k in candidates:
        sym = relative_index_encode(positions, k)
        cost = sym.size * entropy_bits(sym) + k  # + k: favour small k on ties
        if cost < best_cost:
            best, best_cost = k, cost
    return best

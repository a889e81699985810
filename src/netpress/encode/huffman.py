"""Canonical Huffman coding with compact tables and a vectorised decoder.

We write it ourselves: no maintained Python library offers canonical Huffman over
numpy arrays with a table we control byte for byte (``dahuffman`` and friends build
per-symbol Python dicts and decode bit by bit). Here:

- code lengths come from the usual Huffman merge over the symbol counts, limited to
  ``MAX_LEN`` = 15 bits (counts are halved until the longest code fits), so the
  table is one 4-bit length per symbol of the alphabet: 16 bytes for 32 symbols;
- codes are canonical (sorted by length, then symbol), written MSB-first;
- encoding is vectorised (``numpy.repeat`` of the code bits);
- decoding is vectorised: a lookup table of ``2**L`` entries gives, for *every* bit
  offset at once, the symbol and length that would start there; the chain of real
  symbol starts is then followed by pointer doubling (``log2(n)`` gathers), so no
  Python loop runs per symbol;
- a stream with a single distinct symbol costs no payload bits (its table alone says
  which symbol it is; the count lives in the container header).
"""

from __future__ import annotations

import heapq

import numpy as np

from ..errors import FormatError

MAX_LEN = 15


def code_lengths(counts: np.ndarray, max_len: int = MAX_LEN) -> np.ndarray:
    """Huffman code length of every symbol (0 for absent ones), at most ``max_len``.

    Example:
        >>> code_lengths(np.array([5, 1, 1, 3])).tolist()
        [1, 3, 3, 2]
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(counts.size, dtype=np.int64)
    present = np.flatnonzero(counts)
    if present.size == 1:
        lengths[present] = 1
    if present.size <= 1:
        return lengths
    c = counts.copy()
    while True:
        heap = [(int(c[s]), int(s), (int(s),)) for s in present]
        heapq.heapify(heap)
        depth = dict.fromkeys(present.tolist(), 0)
        while len(heap) > 1:
            w1, t1, m1 = heapq.heappop(heap)
            w2, t2, m2 = heapq.heappop(heap)
            for s in m1 + m2:
                depth[s] += 1
            heapq.heappush(heap, (w1 + w2, min(t1, t2), m1 + m2))
        if max(depth.values()) <= max_len:
            for s, d in depth.items():
                lengths[s] = d
            return lengths
        c[present] = np.maximum(1, c[present] // 2)


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code (int64) of every symbol from its length (absent symbols get 0).

    Example:
        >>> canonical_codes(np.array([1, 3, 3, 2])).tolist()
        [0, 6, 7, 2]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(lengths.size, dtype=np.int64)
    code, prev = 0, 0
    for s in np.lexsort((np.arange(lengths.size), lengths)):
        ln = int(lengths[s])
        if ln == 0:
            continue
        code <<= ln - prev
        codes[s] = code
        code += 1
        prev = ln
    return codes


def pack_lengths(lengths: np.ndarray) -> bytes:
    """The table: one 4-bit length per symbol, two per byte (low nibble first).

    Example:
        >>> pack_lengths(np.array([1, 3, 3])).hex()
        '3103'
    """
    ln = np.asarray(lengths, dtype=np.uint8)
    if ln.size % 2:
        ln = np.append(ln, 0)
    return (ln[0::2] | (ln[1::2] << 4)).astype(np.uint8).tobytes()


def unpack_lengths(table: bytes, alphabet: int) -> np.ndarray:
    """Inverse of ``pack_lengths`` for an alphabet of ``alphabet`` symbols.

    Example:
        >>> unpack_lengths(bytes.fromhex("3103"), 3).tolist()
        [1, 3, 3]
    """
    if len(table) != (alphabet + 1) // 2:
        raise FormatError(f"Huffman table has {len(table)} bytes; {alphabet} symbols need "
                          f"{(alphabet + 1) // 2}")
    b = np.frombuffer(table, dtype=np.uint8)
    return np.stack([b & 15, b >> 4], axis=1).ravel()[:alphabet].astype(np.int64)


def huffman_encode(symbols: np.ndarray, alphabet: int) -> tuple[bytes, bytes]:
    """Encode ``symbols`` (ints in ``[0, alphabet)``); returns ``(table, payload)``.

    Example:
        >>> table, payload = huffman_encode(np.array([0, 0, 0, 1]), alphabet=2)
        >>> table.hex(), payload.hex()
        ('11', '10')
    """
    s = np.asarray(symbols, dtype=np.int64).ravel()
    if s.size and (s.min() < 0 or s.max() >= alphabet):
        raise ValueError(f"symbols must lie in [0, {alphabet})")
    lengths = code_lengths(np.bincount(s, minlength=alphabet))
    table = pack_lengths(lengths)
    if (lengths > 0).sum() <= 1:
        return table, b""
    codes = canonical_codes(lengths)
    ln, cd = lengths[s], codes[s]
    total = int(ln.sum())
    starts = np.cumsum(ln) - ln
    within = np.arange(total) - np.repeat(starts, ln)  # bit index inside each code
    shift = np.repeat(ln, ln) - 1 - within
    bits = (np.repeat(cd, ln) >> shift) & 1
    return table, np.packbits(bits.astype(np.uint8)).tobytes()


def huffman_decode(table: bytes, payload: bytes, n: int, alphabet: int) -> np.ndarray:
    """Decode ``n`` symbols (int64). Raises FormatError if the stream does not fit.

    Example:
        >>> huffman_decode(bytes([0x11]), bytes([0x10]), 4, 2).tolist()
        [0, 0, 0, 1]
    """
    lengths = unpack_lengths(table, alphabet)
    if lengths.max(initial=0) > MAX_LEN:
        raise FormatError("Huffman code length above 15")
    present = np.flatnonzero(lengths)
    if n == 0:
        if payload:
            raise FormatError("an empty Huffman stream has payload bytes")
        return np.zeros(0, dtype=np.int64)
    if present.size == 0:
        raise FormatError("Huffman table is empty but symbols are expected")
    if present.size == 1:
        if payload:
            raise FormatError("a one-symbol Huffman stream has payload bytes")
        return np.full(n, present[0], dtype=np.int64)
    kraft = np.sum(2.0 ** -lengths[present])
    if abs(kraft - 1.0) > 1e-12:
        raise FormatError("Huffman code lengths do not form a complete prefix code")
    nbits = len(payload) * 8
    if n > nbits:
        raise FormatError(f"{n} Huffman symbols cannot fit in {len(payload)} bytes")
    L = int(lengths.max())
    codes = canonical_codes(lengths)
    lut_sym = np.zeros(1 << L, dtype=np.int32)
    lut_len = np.zeros(1 << L, dtype=np.int32)
    for s in present:
        lo = int(codes[s]) << (L - int(lengths[s]))
        hi = (int(codes[s]) + 1) << (L - int(lengths[s]))
        lut_sym[lo:hi], lut_len[lo:hi] = s, lengths[s]
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    bits = np.concatenate([bits, np.zeros(L, dtype=np.uint8)]).astype(np.int32)
    window = np.zeros(nbits, dtype=np.int32)
    for i in range(L):  # the L bits starting at every offset, as one integer
        window = (window << 1) | bits[i:i + nbits]
    # jump[p] = where the next code starts if one starts at p; nbits is a sink.
    jump = np.minimum(np.arange(nbits, dtype=np.int32) + lut_len[window], nbits)
    jump = np.append(jump, np.int32(nbits))
    starts = np.zeros(1, dtype=np.int32)
    while starts.size < n:  # pointer doubling: starts[i] = jump^i(0), in order
        starts = np.concatenate([starts, jump[starts]])
        jump = jump[jump]
    starts = starts[:n]
    if starts[-1] >= nbits or starts[-1] + lut_len[window[starts[-1]]] > nbits:
        raise FormatError("Huffman payload ends before all symbols are decoded")
    if -(-(int(starts[-1]) + int(lut_len[window[starts[-1]]])) // 8) != len(payload):
        raise FormatError("Huffman payload has bytes after the last symbol")
    return lut_sym[window[starts]].astype(np.int64)

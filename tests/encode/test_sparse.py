import numpy as np
import pytest

from netpress.encode.sparse import (
    best_gap_bits,
    bitmap_decode,
    bitmap_encode,
    entropy_bits,
    relative_index_decode,
    relative_index_encode,
)
from netpress.errors import FormatError


def test_relative_index_with_overflow_gaps():
    # k=3: gaps 1..7 fit; filler symbol 7 skips 7 positions. Gap 20 = 7 + 7 + 6.
    pos = np.array([0, 1, 8, 28, 29])
    sym = relative_index_encode(pos, 3)
    assert sym.tolist() == [0, 0, 6, 7, 7, 5, 0]
    assert relative_index_decode(sym, 3).tolist() == pos.tolist()


def test_gap_of_exactly_the_filler_width():
    # gap 7 with k=3 is a real symbol 6, gap 8 needs one filler then symbol 0
    assert relative_index_encode(np.array([6]), 3).tolist() == [6]
    assert relative_index_encode(np.array([7]), 3).tolist() == [7, 0]


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_random_roundtrip(k):
    rng = np.random.default_rng(k)
    mask = rng.random(5000) < 0.07
    pos = np.flatnonzero(mask)
    sym = relative_index_encode(pos, k)
    assert sym.max() <= (1 << k) - 1
    assert np.array_equal(relative_index_decode(sym, k, size=5000), pos)


def test_empty_and_errors():
    assert relative_index_encode(np.array([], dtype=np.int64), 4).size == 0
    assert relative_index_decode(np.array([], dtype=np.int64), 4).size == 0
    with pytest.raises(ValueError):
        relative_index_encode(np.array([3, 3]), 4)
    with pytest.raises(FormatError):
        relative_index_decode(np.array([20]), 4)
    with pytest.raises(FormatError):
        relative_index_decode(np.array([9]), 4, size=5)


def test_bitmap_roundtrip_and_length_check():
    mask = np.random.default_rng(0).random(1001) < 0.1
    data = bitmap_encode(mask)
    assert len(data) == 126
    assert np.array_equal(bitmap_decode(data, 1001), mask)
    with pytest.raises(FormatError):
        bitmap_decode(data[:-1], 1001)


def test_entropy_and_best_k():
    assert entropy_bits(np.array([5, 5, 5])) == 0.0
    assert entropy_bits(np.arange(8)) == 3.0
    rng = np.random.default_rng(1)
    pos = np.flatnonzero(rng.random(100_000) < 0.08)
    k = best_gap_bits(pos)
    sym = relative_index_encode(pos, k)
    # the gap stream carries the mask's information: 100k x H(0.08) bits, no more
    h = -(0.08 * np.log2(0.08) + 0.92 * np.log2(0.92))
    assert sym.size * entropy_bits(sym) <= 100_000 * h
    assert sym.size * entropy_bits(sym) <= relative_index_encode(pos, 3).size * entropy_bits(
        relative_index_encode(pos, 3))

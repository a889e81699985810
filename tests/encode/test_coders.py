import numpy as np
import pytest

from netpress.encode.ans import ans_decode, ans_encode, count_level, level_value, pack_counts, unpack_counts
from netpress.encode.huffman import canonical_codes, code_lengths, huffman_decode, huffman_encode
from netpress.encode.sparse import entropy_bits
from netpress.errors import FormatError

rng = np.random.default_rng(0)
STREAMS = {
    "empty": (np.zeros(0, dtype=np.int64), 16),
    "one_symbol": (np.full(1000, 5), 16),
    "single": (np.array([3]), 4),
    "skewed": (np.minimum(rng.geometric(0.4, 20_000) - 1, 31), 32),
    "uniform": (rng.integers(0, 32, 20_000), 32),
    "peaked": (np.where(rng.random(20_000) < 0.99, 0, rng.integers(1, 256, 20_000)), 256),
}


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("coder", ["huffman", "ans"])
def test_roundtrip(name, coder):
    s, alphabet = STREAMS[name]
    enc, dec = (huffman_encode, huffman_decode) if coder == "huffman" else (ans_encode, ans_decode)
    table, payload = enc(s, alphabet)
    assert np.array_equal(dec(table, payload, s.size, alphabet), s)


def test_huffman_near_entropy_on_skewed_and_exact_on_uniform():
    s, a = STREAMS["uniform"]
    _, payload = huffman_encode(s, a)
    assert len(payload) == 20_000 * 5 // 8  # 32 equiprobable symbols: 5 bits each
    s, a = STREAMS["skewed"]
    _, payload = huffman_encode(s, a)
    bound = s.size * entropy_bits(s) / 8
    assert bound <= len(payload) <= 1.05 * bound


def test_ans_within_one_percent_of_entropy_including_table():
    for name in ("skewed", "uniform", "peaked"):
        s, a = STREAMS[name]
        table, payload = ans_encode(s, a)
        bound = s.size * entropy_bits(s) / 8
        assert bound <= len(payload) <= 1.005 * bound + 8, name
        if a == 32:  # 20k symbols over 32: the count table costs under 1%
            assert len(table) + len(payload) <= 1.01 * bound, name


def test_ans_beats_huffman_on_a_peaked_stream():
    s, a = STREAMS["peaked"]
    h = sum(map(len, huffman_encode(s, a)))
    n = sum(map(len, ans_encode(s, a)))
    assert n < 0.75 * h  # Huffman needs >= 1 bit per symbol; entropy is ~0.16


def test_code_lengths_are_limited_and_canonical():
    counts = np.array([2**i for i in range(25)])  # Fibonacci-like: would need 24 bits
    lengths = code_lengths(counts)
    assert lengths.max() <= 15 and np.sum(2.0 ** -lengths) == 1.0
    codes = canonical_codes(np.array([2, 2, 2, 3, 3]))
    assert codes.tolist() == [0b00, 0b01, 0b10, 0b110, 0b111]


def test_corrupt_streams_raise_format_error():
    s, a = STREAMS["skewed"]
    table, payload = huffman_encode(s, a)
    with pytest.raises(FormatError):
        huffman_decode(table, payload[:-5], s.size, a)
    with pytest.raises(FormatError):
        huffman_decode(table, payload, s.size * 100, a)
    with pytest.raises(FormatError):
        huffman_decode(b"\xff" * len(table), payload, s.size, a)
    table, payload = ans_encode(s, a)
    with pytest.raises(FormatError):
        ans_decode(table, payload[:-3], s.size, a)
    with pytest.raises(FormatError, match="bytes after the last count"):
        ans_decode(table + b"\x00", payload, s.size, a)
    with pytest.raises(FormatError, match="present"):  # more symbols present than coded
        ans_decode(table, payload, 3, a)


def test_count_levels_round_to_m_plus_one_significant_bits():
    for m in (0, 1, 4, 15):
        values = [level_value(z, m) for z in range(1, 3000)]
        assert values == sorted(set(values))  # strictly increasing: one level per count
        for c in [1, 2, 3, 7, 100, 999, 2**20 + 12345, 2**40 - 1]:
            v = level_value(count_level(c, m), m)
            assert abs(v - c) <= c * 2.0 ** -(m + 1)
            assert (v // (v & -v)).bit_length() <= m + 1  # at most m + 1 significant bits


@pytest.mark.parametrize("m", [0, 1, 3, 15])
def test_count_table_roundtrip_holds_the_rounded_counts(m):
    counts = np.array([0, 1, 2, 5, 0, 0, 300, 7000, 123_456, 1])
    got = unpack_counts(pack_counts(counts, m), counts.size)
    assert got.tolist() == [level_value(count_level(int(c), m), m) if c else 0 for c in counts]
    if m == 15:
        assert got.tolist() == counts.tolist()  # 16 significant bits hold these exactly


def test_count_table_rejects_out_of_grid_and_garbage():
    with pytest.raises(FormatError, match="6-bit header"):
        unpack_counts(b"", 3)
    # m = 0, g = 0, then a change of +60 levels (beyond the level of 2^40)
    bits = "0000" + "00" + "0" * 6 + format(121, "b")
    bits += "0" * (-len(bits) % 8)
    with pytest.raises(FormatError, match="outside"):
        unpack_counts(int(bits, 2).to_bytes(len(bits) // 8, "big"), 1)
    rng_ = np.random.default_rng(3)
    for _ in range(300):  # random bytes: a FormatError or a valid table, nothing else
        data = rng_.integers(0, 256, rng_.integers(1, 12)).astype(np.uint8).tobytes()
        try:
            counts = unpack_counts(data, 16)
        except FormatError:
            continue
        assert counts.shape == (16,) and counts.min() >= 0


def test_ans_table_is_small_on_a_wide_gap_alphabet():
    # 15k index gaps over 128 symbols, like a 92%-pruned fc layer: the exact-count table
    # of format 1 cost ~150 bytes (+1.6%); rounded, delta-coded levels keep the whole
    # stream within 1% of the entropy bound
    g = np.minimum(np.random.default_rng(5).geometric(0.08, 15_000) - 1, 127)
    table, payload = ans_encode(g, 128)
    bound = g.size * entropy_bits(g) / 8
    assert len(table) < 70 and len(table) + len(payload) <= 1.01 * bound


def test_a_constant_stream_is_coded_whichever_coder_is_asked():
    from netpress.encode.tensors import code_stream, decode_stream

    for coder in ("auto", "ans", "huffman"):
        streams = []
        entry = code_stream(np.zeros(40, dtype=np.int64), 1, coder, streams)
        assert entry["coder"] == "huffman" and len(streams[0]) == 1
        assert decode_stream(entry, streams, 40).tolist() == [0] * 40

import subprocess
import sys

import constriction
import numpy as np
import pytest

from netpress.encode.ans import ans_decode, ans_encode, pack_counts
from netpress.errors import FormatError
from netpress.runtime.ans_decode import ANSFormatError, ans_decode_np, quantized_frequencies, unpack_counts


def _stream(rng, kind, alphabet, n):
    if kind == "uniform":
        return rng.integers(0, alphabet, n)
    if kind == "skewed":
        return np.minimum(rng.geometric(rng.uniform(0.05, 0.9), n) - 1, alphabet - 1)
    if kind == "sparse":  # a few symbols of a wide alphabet, Dirichlet-peaked
        used = rng.choice(alphabet, size=min(alphabet, int(rng.integers(1, 6))), replace=False)
        return used[rng.choice(used.size, n, p=rng.dirichlet(np.full(used.size, 0.3)))]
    return np.full(n, rng.integers(0, alphabet))  # "constant": one distinct symbol


def _cases():
    rng = np.random.default_rng(2024)
    cases = []
    for i in range(48):
        alphabet = int(rng.choice([2, 3, 5, 12, 16, 31, 64, 128, 200, 256]))
        n = int(rng.choice([0, 1, 2, 7, 100, 1000, int(rng.integers(1, 20_001))]))
        kind = ["uniform", "skewed", "sparse", "constant"][i % 4]
        cases.append((f"{kind}-{alphabet}-{n}", _stream(rng, kind, alphabet, n), alphabet))
    # a 12-centroid codebook: weights clustered around zero, so the middle entries dominate
    w = rng.standard_normal(20_000)
    cases.append(("codebook-12", np.digitize(w, np.linspace(-2.5, 2.5, 11)), 12))
    # index gaps of a 92%-pruned layer over 128 symbols (long gaps capped at 127)
    cases.append(("gaps-128", np.minimum(rng.geometric(0.08, 15_000) - 1, 127), 128))
    cases.append(("peaked-256", np.where(rng.random(20_000) < 0.99, 0, rng.integers(1, 256, 20_000)), 256))
    cases.append(("last-only", np.full(50, 255), 256))
    cases.append(("two-of-256", np.array([0] * 9_999 + [255]), 256))
    cases.append(("wide-1000", rng.integers(0, 1000, 5_000), 1000))  # beyond a byte per symbol
    return cases


CASES = _cases()


@pytest.mark.parametrize("name, symbols, alphabet", CASES, ids=[c[0] for c in CASES])
def test_decodes_what_constriction_encoded(name, symbols, alphabet):
    table, payload = ans_encode(symbols, alphabet)
    got = ans_decode_np(table, payload, symbols.size, alphabet)
    assert got.dtype == np.int64 and np.array_equal(got, symbols)


def _constriction_left_cumulatives(counts):
    # Pushing symbol s onto an empty AnsCoder leaves its state at the model's left
    # cumulative of s (0 · f + left + 0), which get_compressed shows as one word (none if 0).
    model = constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)
    left = []
    for s in range(counts.size):
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(np.array([s], dtype=np.int32), model)
        words = coder.get_compressed()
        left.append(int(words[0]) if words.size else 0)
    return np.array(left + [1 << 24], dtype=np.int64)


def _count_tables():
    rng = np.random.default_rng(7)
    tables = [np.array([0, 1, 3]), np.array([1, 1]), np.array([2**40, 1]), np.array([1, 2**40]),
              np.array([0, 2**40, 0, 1, 0]), np.array([3] * 256), np.array([0] * 255 + [1]),
              np.array([1] + [0] * 255), np.array([2**40 - 1] * 256)]
    for _ in range(25):
        k = int(rng.integers(2, 300))
        scale = 2.0 ** rng.integers(0, 41)
        c = np.floor(np.minimum(rng.pareto(rng.uniform(0.3, 3.0), k) * scale, 2.0**40)).astype(np.int64)
        c[rng.random(k) < rng.uniform(0, 0.8)] = 0
        c[rng.integers(k)] += 1  # at least one present
        tables.append(c)
    return tables


@pytest.mark.parametrize("counts", _count_tables())
def test_quantized_frequencies_are_constrictions(counts):
    freqs = quantized_frequencies(counts)
    assert freqs.sum() == 1 << 24 and freqs.min() >= 1
    left = np.concatenate([[0], np.cumsum(freqs)])
    assert np.array_equal(left, _constriction_left_cumulatives(counts))


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args).tolist())
    except (FormatError, ANSFormatError):
        return ("error", None)


def test_corrupt_streams_fail_or_decode_exactly_as_constriction_does():
    rng = np.random.default_rng(11)
    errors = 0
    for name, symbols, alphabet in CASES[::3] + CASES[-5:]:
        if symbols.size == 0:
            continue
        table, payload = ans_encode(symbols, alphabet)
        n = symbols.size
        variants = [(table, payload[:-4], n), (table, payload[4:], n), (table, payload[:-1], n),
                    (table, payload + b"\x01\x00\x00\x00", n), (table, payload + bytes(4), n),
                    (table, b"", n), (table, payload, n + 1), (table, payload, max(n - 1, 0)),
                    (table[:-1], payload, n), (table + b"\x00", payload, n), (b"", payload, n)]
        for _ in range(6):
            flipped = bytearray(payload)
            if flipped:
                flipped[rng.integers(len(flipped))] ^= 1 << int(rng.integers(8))
            variants.append((table, bytes(flipped), n))
            junk = rng.integers(0, 256, 4 * int(rng.integers(0, 6))).astype(np.uint8).tobytes()
            variants.append((table, junk, n))
            t = bytearray(table)
            t[rng.integers(len(t))] ^= 1 << int(rng.integers(8))
            variants.append((bytes(t), payload, n))
        for t, p, k in variants:
            mine = _outcome(ans_decode_np, t, p, k, alphabet)
            assert mine == _outcome(ans_decode, t, p, k, alphabet), name
            errors += mine[0] == "error"
    assert errors > 100  # the corruptions do get refused


def test_refusals_are_value_errors_with_one_line_messages():
    table, payload = ans_encode(np.array([0, 1, 1, 2, 2, 2]), 3)
    bad = [(b"\x00", b"", 0, 3), (table, payload[:-1], 6, 3), (table, payload, 2, 3),
           (table, payload + bytes(4), 6, 3), (table, payload + b"\x07\x00\x00\x00", 6, 3),
           (table, payload, 6, 4), (pack_counts(np.array([6]), 0), payload, 6, 1)]
    for args in bad:
        with pytest.raises(ANSFormatError) as e:
            ans_decode_np(*args)
        assert isinstance(e.value, ValueError) and "\n" not in str(e.value)
        with pytest.raises(FormatError):  # netpress's own decoder refuses the same input
            ans_decode(*args)


def test_empty_and_degenerate_streams():
    assert ans_decode_np(b"", b"", 0, 16).shape == (0,)
    # constriction's leaky model decodes an empty payload as symbol 0 repeated, even when
    # the table says 0 is absent; the numpy decoder agrees rather than guessing
    table = pack_counts(np.array([0, 5]), 0)
    assert ans_decode_np(table, b"", 5, 2).tolist() == ans_decode(table, b"", 5, 2).tolist() == [0] * 5
    with pytest.raises(ValueError):  # an alphabet of 1 cannot be ANS-coded at all
        ans_encode(np.zeros(4, dtype=np.int64), 1)
    with pytest.raises(ANSFormatError):
        quantized_frequencies(np.array([0, 0]))


def test_unpack_counts_reads_netpress_tables():
    counts = np.array([0, 1, 2, 5, 0, 0, 300, 7000, 123_456, 1])
    for m in (0, 1, 3, 15):
        table = pack_counts(counts, m)
        assert unpack_counts(table, 10).tolist() == unpack_counts(table, 10).tolist()


def test_module_imports_neither_torch_nor_constriction():
    code = ("import sys, netpress.runtime.ans_decode; "
            "print(sorted(m for m in ('torch', 'constriction') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

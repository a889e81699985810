import gzip
import struct

import numpy as np
import pytest

from netpress.data.idx import parse_idx, read_idx
from netpress.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def test_parse_round_trip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(idx_bytes(arr)), arr)


def test_read_gz_and_raw(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    (tmp_path / "b").write_bytes(idx_bytes(arr))
    assert read_idx(tmp_path / "a.gz").tolist() == list(range(10))
    assert read_idx(tmp_path / "b").tolist() == list(range(10))


@pytest.mark.parametrize(
    "raw, msg",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01\x05", "bad IDX magic"),
        (b"\x00\x00\x0d\x01" + b"\x00\x00\x00\x01" + b"\x00" * 4, "unsupported"),
        (b"\x00\x00\x08\x09", "dimensions"),
        (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated or corrupt"),
        (b"\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff", "implausibly large"),
    ],
)
def test_corrupt_headers(raw, msg):
    with pytest.raises(DataError, match=msg):
        parse_idx(raw)


def test_every_truncation_is_an_error():
    raw = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    for cut in range(len(raw)):
        with pytest.raises(DataError):
            parse_idx(raw[:cut])


def test_truncated_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="gzip"):
        read_idx(tmp_path / "t.gz")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.gz")

import json
import zlib

import pytest

from netpress.encode.container import PREFIX, VERSION, pack_container, read_header, unpack_container
from netpress.errors import FormatError

# The worked example of docs/FORMAT.md: header {"a": 1}, streams b"xy" and b"z".
EXAMPLE = bytes.fromhex(
    "4e45545052455353030000003900000031000000652d324b78daab564a54b232d4512a2e294a4dcc2d56b28a"
    "8e36d2313231343132323535338cd58936d431343335b734333036338f8dad05004c1c0cd300000000000000"
    "78790000000000007a"
)
EXAMPLE_TEXT = '{"a":1,"streams":[[2,2414225561],[1,1657960367]]}'


def test_exact_bytes_of_the_spec_example():
    data = pack_container({"a": 1}, [b"xy", b"z"])
    assert data == EXAMPLE
    magic, version, stored, text_len, crc = PREFIX.unpack_from(data)
    assert (magic, version, text_len) == (b"NETPRESS", 3, len(EXAMPLE_TEXT))
    assert zlib.decompress(data[24:24 + stored]).decode() == EXAMPLE_TEXT
    assert crc == zlib.crc32(data[24:24 + stored])
    data_start = -(-(24 + stored) // 8) * 8
    assert data[data_start:data_start + 2] == b"xy" and data[data_start + 8:] == b"z"
    assert set(data[24 + stored:data_start]) <= {0}
    assert unpack_container(data) == ({"a": 1, "streams": json.loads(EXAMPLE_TEXT)["streams"]},
                                      [b"xy", b"z"])


def test_every_byte_flip_is_detected():
    for i in range(len(EXAMPLE)):
        bad = bytearray(EXAMPLE)
        bad[i] ^= 0x5A
        with pytest.raises(FormatError):
            unpack_container(bytes(bad))


def test_every_truncation_and_extension_is_detected():
    for n in range(len(EXAMPLE)):
        with pytest.raises(FormatError):
            unpack_container(EXAMPLE[:n])
    with pytest.raises(FormatError):
        unpack_container(EXAMPLE + b"\0")


def test_no_streams_and_refusals():
    data = pack_container({"x": []}, [])
    assert unpack_container(data) == ({"x": [], "streams": []}, [])
    with pytest.raises(FormatError, match="magic"):
        read_header(b"PK\x03\x04" + bytes(40))
    bad = bytearray(data)
    bad[8] = 4
    with pytest.raises(FormatError, match="version 4 is not supported.*upgrade netpress"):
        read_header(bytes(bad))
    for old in (1, 2):  # 1 stored exact ANS counts, 2 no graph: refused with what to do
        bad[8] = old
        with pytest.raises(FormatError, match=f"version {old} is older.*netpress pack"):
            read_header(bytes(bad))


def test_inflation_bomb_refused():
    text = b"[" + b" " * 10_000_000 + b"]"
    stored = zlib.compress(text, 9)
    data = PREFIX.pack(b"NETPRESS", VERSION, len(stored), len(text), zlib.crc32(stored)) + stored
    with pytest.raises(FormatError, match="refusing"):
        read_header(data)

"""The ``.netpress`` container: magic, version, a JSON header, aligned checksummed streams.

Layout (all integers little-endian; the full spec with an annotated example is in
docs/FORMAT.md)::

    0   8  magic  b"NETPRESS"
    8   4  u32 format version (2)
    12  4  u32 H = byte length of the stored header
    16  4  u32 U = byte length of the header once inflated (the JSON text)
    20  4  u32 CRC-32 of the stored header bytes
    24  H  header: UTF-8 JSON, deflated with zlib (RFC 1950)
    ...    each stream, starting at the next multiple of 8 (zero padding before it)

The header holds ``"streams": [[length, crc32], …]``; stream *i* starts at the first
multiple of 8 at or after the end of stream *i − 1* (stream 0 at the start of the data
area, the first multiple of 8 after the header), so offsets need not be stored.
The layout is canonical — streams in order, each at the first aligned offset after the
previous one, the file ends where the last stream ends — so every byte of a file is
checked by something: the magic, the version, a length, a CRC, or a zero padding rule.

The reader never unpickles, checks each field before using it, inflates the header
with a hard cap (``U`` ≤ 64 × ``H`` and ≤ 16 MiB), and raises ``FormatError`` for any
defect. The header is deflated because it is JSON (readable with ``netpress inspect``
or three lines of Python) yet, plain, would cost a model of 20 KB a tenth of its size.
"""

from __future__ import annotations

import json
import struct
import zlib

from ..errors import FormatError

MAGIC = b"NETPRESS"
VERSION = 3  # 3: the graph inside; 2: ANS count tables hold rounded, delta-coded levels
PREFIX = struct.Struct("<8sIIII")
ALIGN = 8
MAX_HEADER = 16 << 20


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def pack_container(header: dict, streams: list[bytes]) -> bytes:
    """Serialize ``header`` (JSON-able; its ``streams`` key is filled here) and ``streams``.

    Example:
        >>> data = pack_container({"hello": 1}, [b"abc"])
        >>> data[:8], len(data) % 8 != 0
        (b'NETPRESS', True)
    """
    table, offsets, offset = [], [], 0
    for s in streams:
        offset = _align(offset)
        table.append([len(s), zlib.crc32(s)])
        offsets.append(offset)
        offset += len(s)
    head = dict(header, streams=table)
    text = json.dumps(head, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    stored = zlib.compress(text, 9)
    out = bytearray(PREFIX.pack(MAGIC, VERSION, len(stored), len(text), zlib.crc32(stored)))
    out += stored
    data_start = _align(len(out)) if streams else len(out)
    for s, off in zip(streams, offsets, strict=True):
        out += b"\0" * (data_start + off - len(out))
        out += s
    return bytes(out)


def _entry(i: int, entry: object) -> tuple[int, int]:
    if not isinstance(entry, list) or len(entry) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 40 for v in entry):
        raise FormatError(f"stream table entry {i} is {entry!r:.60}; expected [length, crc32]")
    return entry[0], entry[1]


def read_header(data: bytes) -> tuple[dict, int]:
    """Check the prefix and return ``(header, data_start)``; streams are not checked.

    Example:
        >>> read_header(pack_container({"a": 1}, []))[0]["a"]
        1
    """
    if len(data) < PREFIX.size:
        raise FormatError(f"file is {len(data)} bytes, shorter than the {PREFIX.size}-byte "
                          "prefix of a .netpress file")
    magic, version, stored_len, text_len, crc = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a .netpress file (bad magic); write one with `netpress pack` "
                          "or `netpress compress`")
    if version < VERSION:
        raise FormatError(f".netpress format version {version} is older than this netpress "
                          f"reads ({VERSION}; version 2 files hold no graph): read it with "
                          "netpress 0.1 (`netpress unpack` gives its weights) and write it "
                          "again with `netpress pack` or `netpress compress`")
    if version != VERSION:
        raise FormatError(f".netpress format version {version} is not supported (this netpress "
                          f"reads version {VERSION}); upgrade netpress")
    end = PREFIX.size + stored_len
    if end > len(data):
        raise FormatError(f"file is truncated: header needs {end} bytes, file has {len(data)}")
    if text_len > min(MAX_HEADER, 64 * max(stored_len, 1)):
        raise FormatError(f"header claims {text_len} bytes when inflated; refusing")
    stored = data[PREFIX.size:end]
    if zlib.crc32(stored) != crc:
        raise FormatError("header checksum mismatch: the file is corrupt")
    try:
        z = zlib.decompressobj()
        text = z.decompress(stored, text_len)
        if len(text) != text_len or z.unconsumed_tail or not z.eof or z.unused_data:
            raise FormatError("header does not inflate to its declared length")
        header = json.loads(text.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"header is not valid deflated JSON ({e})") from e
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    return header, end


def unpack_container(data: bytes) -> tuple[dict, list[bytes]]:
    """Validate a whole file and return ``(header, streams)``; FormatError on any defect.

    Example:
        >>> unpack_container(pack_container({"a": 1}, [b"xy", b"z"]))[1]
        [b'xy', b'z']
    """
    header, end = read_header(data)
    table = header.get("streams")
    if not isinstance(table, list):
        raise FormatError("header has no stream table")
    data_start = _align(end) if table else end
    if data_start > len(data):
        raise FormatError("file is truncated inside the header padding")
    if any(data[end:data_start]):
        raise FormatError("nonzero bytes in the padding after the header")
    streams, expected = [], 0
    for i, entry in enumerate(table):
        length, crc = _entry(i, entry)
        off = _align(expected)
        lo, hi = data_start + off, data_start + off + length
        if hi > len(data):
            raise FormatError(f"file is truncated: stream {i} ends at byte {hi}, "
                              f"file has {len(data)}")
        if any(data[data_start + expected:lo]):
            raise FormatError(f"nonzero bytes in the padding before stream {i}")
        chunk = data[lo:hi]
        if zlib.crc32(chunk) != crc:
            raise FormatError(f"stream {i} checksum mismatch: the file is corrupt")
        streams.append(chunk)
        expected = off + length
    if len(data) != data_start + expected:
        raise FormatError(f"file has {len(data) - data_start - expected} bytes after the "
                          "last stream")
    return header, streams

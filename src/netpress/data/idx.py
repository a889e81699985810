"""Reader for the IDX format of (Fashion-)MNIST, gzipped or raw.

IDX: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
then one big-endian uint32 per dimension, then the data. Every size is checked
against the file before anything is allocated, so a truncated or wrong file is a
clear ``DataError``, never a hang or a huge allocation.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from ..errors import DataError

_UBYTE = 0x08
_MAX_ITEMS = 1 << 31


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (already decompressed) into a uint8 array.

    Example:
        >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])).tolist()
        [7, 9]
    """
    if len(raw) < 4:
        raise DataError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise DataError(f"{name}: bad IDX magic {raw[:4].hex()}; is this an IDX file?")
    if dtype != _UBYTE:
        raise DataError(f"{name}: IDX type 0x{dtype:02x} unsupported (only unsigned bytes)")
    if not 1 <= ndim <= 4:
        raise DataError(f"{name}: IDX file claims {ndim} dimensions; expected 1 to 4")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = 1
    for d in dims:
        count *= d
    if count > _MAX_ITEMS:
        raise DataError(f"{name}: IDX dimensions {dims} are implausibly large")
    if len(raw) - header != count:
        raise DataError(
            f"{name}: IDX dimensions {dims} need {count} data bytes but the file has "
            f"{len(raw) - header}; the file is truncated or corrupt, fetch it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.gz`` or raw IDX file into a uint8 array."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({e}); fetch it again") from e
    return parse_idx(raw, path)

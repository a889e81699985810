"""Packed storage of low-bit integer codes: ``bits`` per code, no padding between codes.

Codes are written as one little-endian bit stream (code ``i`` occupies bits
``i·bits … i·bits + bits − 1``), so two 4-bit codes share a byte, eight 3-bit codes take
three bytes, four 2-bit codes one byte. The stream ends at a byte boundary.
"""

from __future__ import annotations

import numpy as np
import torch


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack unsigned integer codes (each < 2**bits) into a uint8 tensor.

    Example:
        >>> pack_codes(torch.tensor([1, 2, 3, 15]), 4).tolist()
        [33, 243]
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    c = codes.detach().flatten().to(torch.int64).numpy()
    if c.size and (c.min() < 0 or c.max() >= 2**bits):
        raise ValueError(f"codes out of range for {bits} bits")
    bitplanes = ((c[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return torch.from_numpy(np.packbits(bitplanes.reshape(-1), bitorder="little").copy())


def unpack_codes(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of ``pack_codes``: ``count`` codes as int64.

    Example:
        >>> unpack_codes(torch.tensor([33, 243], dtype=torch.uint8), 4, 4).tolist()
        [1, 2, 3, 15]
    """
    if packed.numel() * 8 < count * bits:
        raise ValueError(f"{packed.numel()} bytes cannot hold {count} codes of {bits} bits")
    flat = np.unpackbits(packed.numpy().astype(np.uint8), count=count * bits, bitorder="little")
    planes = flat.reshape(count, bits).astype(np.int64)
    return torch.from_numpy(planes @ (1 << np.arange(bits, dtype=np.int64)))


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes of ``count`` packed codes.

    Example:
        >>> packed_nbytes(1000, 3)
        375
    """
    return -(-count * bits // 8)

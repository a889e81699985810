"""Truncated SVD of a weight matrix: W (out × in) ≈ B · A with A (r × in), B (out × r).

Pure tensor maths, apart from module surgery. We use ``torch.linalg.svd`` (in float64,
so the factors do not depend on BLAS rounding order more than they must) rather than
tensorly here: a matrix SVD is one LAPACK call and torch already has it.
The singular values are split evenly, ``A = √S·Vᵀ`` and ``B = U·√S``, so both factors
have the same scale, which keeps fine-tuning with one learning rate well conditioned.

Decompositions run on one thread (``single_thread``): LAPACK on matrices this small
gains nothing from threads, and on a busy machine spinning OpenMP/BLAS workers made a
300×784 SVD take seconds instead of a fraction of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with torch and numpy's BLAS/OpenMP pools at one thread, then restore.

    Example:
        >>> with single_thread():
        ...     torch.get_num_threads()
        1
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Singular values of a 2-D weight, largest first (float64).

    Example:
        >>> singular_values(torch.diag(torch.tensor([3.0, 1.0]))).tolist()
        [3.0, 1.0]
    """
    if weight.dim() != 2:
        raise ValueError(f"SVD needs a 2-D weight, got shape {tuple(weight.shape)}")
    with single_thread():
        return torch.linalg.svdvals(weight.detach().double())


def svd_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-``rank`` factors ``(A, B)`` with ``B @ A ≈ weight`` (best in Frobenius norm).

    Example:
        >>> w = torch.randn(6, 4)
        >>> a, b = svd_factors(w, 4)
        >>> a.shape, b.shape, torch.allclose(b @ a, w, atol=1e-5)
        (torch.Size([4, 4]), torch.Size([6, 4]), True)
    """
    if weight.dim() != 2:
        raise ValueError(f"SVD needs a 2-D weight, got shape {tuple(weight.shape)}")
    full = min(weight.shape)
    if not 1 <= rank <= full:
        raise ValueError(f"rank must be in 1..{full}, got {rank}")
    with single_thread():
        u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    a = root[:, None] * vh[:rank]
    b = u[:, :rank] * root[None, :]
    return a.to(weight.dtype).contiguous(), b.to(weight.dtype).contiguous()


def svd_params(out_features: int, in_features: int, rank: int) -> int:
    """Weights of the two factors (biases not included): ``rank · (in + out)``.

    Example:
        >>> svd_params(300, 784, 60)
        65040
    """
    return rank * (in_features + out_features)


def svd_break_even(out_features: int, in_features: int) -> int:
    """The largest rank whose factors hold fewer weights than the dense matrix.

    Example:
        >>> svd_break_even(100, 100)
        49
    """
    return max(0, (out_features * in_features - 1) // (out_features + in_features))

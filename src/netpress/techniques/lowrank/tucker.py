"""Tucker-2 and CP decompositions of a conv kernel (O × I × kh × kw), via tensorly.

- Tucker-2 (Kim et al. 2016): decompose only the two channel modes,
  ``W ≈ core ×₀ U_out ×₁ U_in`` with core (R_out × R_in × kh × kw). As layers:
  1×1 conv I→R_in (weight U_inᵀ), kh×kw conv R_in→R_out (the core, with the original
  stride/padding/dilation), 1×1 conv R_out→O (weight U_out, the original bias).
- CP (Lebedev et al. 2015): ``W ≈ Σ_r λ_r a_r ⊗ b_r ⊗ c_r ⊗ d_r``. As layers: 1×1
  conv I→R, depthwise kh×1 conv, depthwise 1×kw conv, 1×1 conv R→O.

tensorly's HOOI (``partial_tucker``) and ALS (``parafac``) run in float64 numpy with a
fixed SVD initialisation, so the same weights give the same factors every time. The
numpy backend is selected inside a ``backend_context``, never globally.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorly as tl
import torch
from tensorly.decomposition import parafac, partial_tucker

from .svd import single_thread, singular_values


def mode_singular_values(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values of the kernel's output-channel and input-channel unfoldings.

    Example:
        >>> so, si = mode_singular_values(torch.randn(8, 4, 3, 3))
        >>> len(so), len(si)
        (8, 4)
    """
    o, i = kernel.shape[:2]
    out_unfold = kernel.detach().reshape(o, -1)
    in_unfold = kernel.detach().transpose(0, 1).reshape(i, -1)
    return singular_values(out_unfold), singular_values(in_unfold)


def tucker2_factors(
    kernel: torch.Tensor, ranks: tuple[int, int], n_iter_max: int = 100
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tucker-2 of a conv kernel: ``(first, core, last)`` as conv weights.

    ``first`` is (R_in, I, 1, 1), ``core`` (R_out, R_in, kh, kw), ``last`` (O, R_out, 1, 1);
    ``ranks = (R_out, R_in)``.

    Example:
        >>> w = torch.randn(8, 4, 3, 3)
        >>> f, c, l = tucker2_factors(w, (8, 4))
        >>> f.shape, c.shape, l.shape
        (torch.Size([4, 4, 1, 1]), torch.Size([8, 4, 3, 3]), torch.Size([8, 8, 1, 1]))
    """
    if kernel.dim() != 4:
        raise ValueError(f"Tucker-2 needs a 4-D conv kernel, got shape {tuple(kernel.shape)}")
    o, i = kernel.shape[:2]
    r_out, r_in = ranks
    if not (1 <= r_out <= o and 1 <= r_in <= i):
        raise ValueError(f"Tucker ranks must be in 1..{o} and 1..{i}, got {ranks}")
    x = kernel.detach().double().cpu().numpy()
    with tl.backend_context("numpy"), single_thread():
        (core, (u_out, u_in)), _ = partial_tucker(
            x, [r_out, r_in], modes=[0, 1], init="svd", n_iter_max=n_iter_max, tol=1e-10)
    dt = kernel.dtype
    first = torch.from_numpy(np.ascontiguousarray(u_in.T)).to(dt)[:, :, None, None]
    last = torch.from_numpy(np.ascontiguousarray(u_out)).to(dt)[:, :, None, None]
    core_t = torch.from_numpy(np.ascontiguousarray(core)).to(dt)
    return first.contiguous(), core_t.contiguous(), last.contiguous()


def tucker2_params(out_ch: int, in_ch: int, kh: int, kw: int, ranks: tuple[int, int]) -> int:
    """Weights of the three Tucker-2 convs (bias not included).

    Example:
        >>> tucker2_params(50, 20, 5, 5, (20, 10))
        6200
    """
    r_out, r_in = ranks
    return in_ch * r_in + r_in * r_out * kh * kw + r_out * out_ch


def cp_factors(
    kernel: torch.Tensor, rank: int, n_iter_max: int = 100
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CP of a conv kernel as four conv weights: ``(first, vertical, horizontal, last)``
    of shapes (R, I, 1, 1), (R, 1, kh, 1), (R, 1, 1, kw), (O, R, 1, 1). The CP weights λ
    are folded into ``last``.

    Example:
        >>> [tuple(t.shape) for t in cp_factors(torch.randn(6, 4, 3, 3), 5)]
        [(5, 4, 1, 1), (5, 1, 3, 1), (5, 1, 1, 3), (6, 5, 1, 1)]
    """
    if kernel.dim() != 4:
        raise ValueError(f"CP needs a 4-D conv kernel, got shape {tuple(kernel.shape)}")
    if rank < 1:
        raise ValueError(f"CP rank must be ≥ 1, got {rank}")
    x = kernel.detach().double().cpu().numpy()
    with tl.backend_context("numpy"), warnings.catch_warnings(), single_thread():
        # tensorly warns when the SVD init asks for more vectors than a small mode has
        warnings.simplefilter("ignore", UserWarning)
        cp = parafac(x, rank, init="svd", n_iter_max=n_iter_max, tol=1e-8,
                     random_state=0, svd="truncated_svd")
    weights, (a, b, c, d) = cp.weights, cp.factors
    dt = kernel.dtype

    def t(arr):
        return torch.from_numpy(np.ascontiguousarray(arr)).to(dt)

    first = t(b.T)[:, :, None, None]
    vertical = t(c.T)[:, None, :, None]
    horizontal = t(d.T)[:, None, None, :]
    last = t(a * weights[None, :])[:, :, None, None]
    return first.contiguous(), vertical.contiguous(), horizontal.contiguous(), last.contiguous()


def cp_params(out_ch: int, in_ch: int, kh: int, kw: int, rank: int) -> int:
    """Weights of the four CP convs (bias not included).

    Example:
        >>> cp_params(50, 20, 5, 5, 10)
        800
    """
    return rank * (in_ch + kh + kw + out_ch)

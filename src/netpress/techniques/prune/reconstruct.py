"""Least-squares repair of the projections that lose inputs when heads or FFN neurons go.

Removing FFN neurons (or attention heads) deletes their share of each layer's output: the
down projection (or the attention output projection) no longer sees those inputs. Most of
that share can be restored without training (Kwon et al. 2022, "A Fast Post-Training
Pruning Framework for Transformers", layer-wise reconstruction): the surviving input
columns of the projection and its bias are refitted so that, on calibration tokens, the
projection's output is as close as possible in least squares to what it was with every
input. With ``X`` the projection's inputs before removal (padding tokens left out), ``G``
the Gram matrix of ``[X, 1]`` and ``K`` the kept inputs (plus the constant column):

    [W', b']ᵀ = (G_KK + λ·I)⁻¹ · G_K· · [W, b]ᵀ,   λ = damp · mean(diag G_KK)

On all-MiniLM-L6-v2 with half of the FFN neurons removed it lifts the cosine to the
uncompressed model from 0.73 to 0.90 before any fine-tuning (BENCHMARKS.md).

Why our own code: Torch-Pruning and transformers remove units but do not refit what is
left; the few lines of algebra need only the Gram matrices collected here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ...batches import call, inputs_of, real_tokens
from .heads import weight_out_in


@torch.no_grad()
def input_grams(model: nn.Module, modules: Mapping[int, nn.Module], batches: Iterable
                ) -> dict[int, torch.Tensor]:
    """Per key, the float64 Gram matrix of ``[input, 1]`` of ``modules[key]`` over
    ``batches`` (tokens where ``attention_mask`` is 0 are left out).

    Example:
        >>> lin = nn.Linear(3, 2)
        >>> g = input_grams(lin, {0: lin}, [torch.ones(4, 3)])
        >>> g[0].shape, float(g[0][3, 3])
        (torch.Size([4, 4]), 4.0)
    """
    grams: dict[int, torch.Tensor] = {}
    state: dict = {}

    def hook(key):
        def pre(mod, args):
            x = real_tokens(args[0].detach(), state.get("mask"))
            rows = x.reshape(-1, x.shape[-1]).double()
            rows = torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype)], 1)
            grams[key] = grams.get(key, 0) + rows.T @ rows
        return pre

    handles = [m.register_forward_pre_hook(hook(k)) for k, m in modules.items()]
    was = model.training
    model.eval()
    try:
        for b in batches:
            x = inputs_of(b)
            state["mask"] = x.get("attention_mask") if isinstance(x, dict) else None
            call(model, x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return grams


@torch.no_grad()
def refit_inputs(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None,
                 gram: torch.Tensor, kept: torch.Tensor, damp: float = 0.01) -> None:
    """Set ``module`` (already cut to inputs ``kept``) to the least-squares refit of the full
    projection ``weight [out, in]``/``bias`` from its kept inputs, given ``gram`` of the
    full inputs (with the constant column last). A module without a bias keeps none (its
    constant column is left out of the fit).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(256, 4); x[:, 3] = x[:, 2]  # input 3 repeats input 2
        >>> lin = nn.Linear(4, 2); ref = lin(x).detach()
        >>> g = input_grams(lin, {0: lin}, [x])[0]; w, b = full_weight(lin)
        >>> cut = nn.Linear(3, 2); refit_inputs(cut, w, b, g, torch.tensor([0, 1, 2]), damp=0)
        >>> bool(torch.allclose(cut(x[:, :3]), ref, atol=1e-4))
        True
    """
    n = weight.shape[1]
    has_bias = bias is not None
    cols = torch.cat([kept.long(), torch.tensor([n])]) if has_bias else kept.long()
    full = torch.cat([weight.double(), bias.double()[:, None]], 1) if has_bias else weight.double()
    g_kk = gram[cols][:, cols]
    reg = damp * g_kk.diagonal().mean().clamp_min(1e-12)
    sol = torch.linalg.solve(g_kk + reg * torch.eye(len(cols), dtype=g_kk.dtype),
                             gram[cols][:, :full.shape[1]] @ full.T)  # (kept [+1], out)
    target = weight_out_in(module)  # a view: writing it writes the Linear/Conv1D weight
    target.copy_(sol[:len(kept)].T.to(target.dtype))
    if has_bias:
        module.bias.copy_(sol[len(kept)].to(module.bias.dtype))


def full_weight(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A copy of ``module``'s weight as ``[out, in]`` and of its bias."""
    b = module.bias.detach().clone() if module.bias is not None else None
    return weight_out_in(module).detach().clone(), b

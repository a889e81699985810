"""``GroupLasso``: drive whole channels to zero during training, then remove them.

Each output row of a targeted layer (a Conv's channel with its bias, a Linear's neuron) is
a group g. After every optimiser step a proximal step of the group lasso penalty
λ Σ_g s_l ‖W_g‖₂ shrinks each group: W_g ← W_g · max(0, 1 − lr·λ·s_l / ‖W_g‖₂), which
sets groups whose norm falls below the threshold to exactly zero. The scale s_l is the
layer's median group norm when training starts (instead of the textbook √|g|), so that λ
means the same for a conv channel of 25 weights as for a neuron of 800 (Wen et al. 2016's
structured sparsity, trained with proximal steps). At the end, after one last proximal step
at the full step size, the zero groups are removed for real with Torch-Pruning
(``removal.remove_channels``); the output layer is left whole.

Example:
    >>> GroupLasso(lam=0.5).epochs
    3
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets
from .l0 import gated_layers
from .removal import remove_channels


@dataclass(frozen=True)
class GroupLasso(Config):
    """Channel/neuron group lasso with proximal steps, then physical removal.

    Example:
        >>> GroupLasso(lam=0.2, epochs=2).to_dict()["lam"]
        0.2
    """

    lam: float = 0.5  # penalty strength: each step shrinks groups by lr·lam × median norm
    epochs: int = 3  # training epochs with the penalty
    lr: float = 1e-3  # Adam learning rate (cosine-decayed); also the proximal step size
    targets: Targets = Targets(types=("Linear", "Conv2d"))

    def validate(self) -> None:
        if self.lam < 0 or self.epochs < 1 or self.lr <= 0:
            raise ConfigError("lam must be >= 0, epochs >= 1 and lr > 0")


@torch.no_grad()
def prox_step(layer: nn.Module, strength: float) -> None:
    """Shrink each output row (and its bias) of ``layer`` by the group lasso prox.

    Example:
        >>> lin = nn.Linear(2, 2); lin.weight.data = torch.tensor([[3.0, 4.0], [0.1, 0.0]])
        >>> lin.bias.data.zero_(); prox_step(lin, 1.0); lin.weight.tolist()
        [[2.4000000953674316, 3.200000047683716], [0.0, 0.0]]
    """
    w = layer.weight
    b = getattr(layer, "bias", None)
    scale = (1 - strength / group_norms(layer).clamp_min(1e-12)).clamp_min(0)
    w.mul_(scale.view(-1, *([1] * (w.dim() - 1))))
    if b is not None:
        b.mul_(scale)


def group_norms(layer: nn.Module) -> torch.Tensor:
    """The L2 norm of each output row of ``layer`` with its bias entry."""
    sq = layer.weight.detach().flatten(1).pow(2).sum(1)
    if getattr(layer, "bias", None) is not None:
        sq = sq + layer.bias.detach().pow(2)
    return sq.sqrt()


def zero_rows(layer: nn.Module) -> list[int]:
    """Indices of the output rows whose weights and bias are all zero."""
    nz = layer.weight.detach().flatten(1).abs().sum(1)
    if getattr(layer, "bias", None) is not None:
        nz = nz + layer.bias.detach().abs()
    return torch.nonzero(nz == 0).flatten().tolist()


@register(GroupLasso)
def apply_group_lasso(model: nn.Module, cfg: GroupLasso, ctx: Context) -> nn.Module:
    """Train with proximal group-lasso steps, then remove the zeroed channels.

    Example:
        >>> from netpress import compress
        >>> compress(model, [GroupLasso(lam=0.5)], ctx)  # doctest: +SKIP
    """
    from ...bake import bake

    bake(model)
    example = ctx.example_inputs(1)
    layers = [m for _, m in gated_layers(model, cfg.targets, True, (nn.Linear, nn.Conv2d), example)]
    if not layers:
        raise ConfigError("GroupLasso found no layer to regularise; check targets")

    scale = {m: float(group_norms(m).median()) for m in layers}

    def on_step(step: int, total: int) -> None:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        for m in layers:
            prox_step(m, lr * cfg.lam * scale[m])

    ctx.finetune(model, cfg.epochs, lr=cfg.lr, on_step=on_step, description="group lasso")
    for m in layers:  # one last full proximal step (the cosine schedule ends near zero)
        prox_step(m, cfg.lr * cfg.lam * scale[m])
    model.eval()
    remove_channels(model, {m: zero_rows(m) for m in layers}, example)
    return model

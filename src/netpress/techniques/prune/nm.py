"""N:M semi-structured sparsity along the input dimension (2:4, 4:8, any N ≤ M).

In every run of M consecutive input channels (per output row and, for convolutions,
per kernel position) only the N largest-magnitude weights are kept. The masks are
held on the model during fine-tuning like any pruning mask, so the pattern survives
training; ``check_nm`` verifies every group of every targeted layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets
from .masking import masked_weights, set_mask
from .masks import nm_mask, nm_violations


@dataclass(frozen=True)
class NMSparsity(Config):
    """Keep N of every M consecutive weights along the input dimension.

    Example:
        >>> NMSparsity(2, 4).to_dict()["m"]
        4
    """

    n: int = 2  # weights kept per group
    m: int = 4  # group size along the input dimension
    finetune_epochs: int = 0  # epochs of fine-tuning with the pattern held
    lr: float = 1e-4  # Adam learning rate of the fine-tuning (cosine decay)
    targets: Targets = Targets()  # which modules' weights get the pattern

    def validate(self) -> None:
        if not 0 < self.n <= self.m:
            raise ConfigError(f"N:M needs 0 < N <= M, got {self.n}:{self.m}")
        if self.finetune_epochs < 0 or self.lr <= 0:
            raise ConfigError("finetune_epochs must be >= 0 and lr > 0")


def _check_shapes(mods: dict[str, nn.Module], m: int) -> None:
    bad = [f"{n} (input dim {mod.weight.shape[1]})" for n, mod in mods.items()
           if mod.weight.dim() < 2 or mod.weight.shape[1] % m]
    if bad:
        raise ConfigError(
            f"N:M with M={m} needs input dimensions divisible by {m}; not so for "
            f"{', '.join(bad)}; leave them out with targets.ignore (CLI: --ignore NAME)"
        )


def check_nm(model: nn.Module, n: int, m: int, targets: Targets = Targets()) -> dict[str, int]:
    """Violating groups per targeted layer (all zeros when the model obeys N:M).

    Example:
        >>> lin = nn.Sequential(nn.Linear(4, 1))
        >>> check_nm(lin, 2, 4)
        {'0': 1}
    """
    return {name: nm_violations(mod.weight.detach(), n, m)
            for name, mod in masked_weights(model, targets).items()}


@register(NMSparsity)
def apply_nm(model: nn.Module, cfg: NMSparsity, ctx: Context) -> nn.Module:
    """Mask every targeted layer to N:M, fine-tune, and verify the pattern held."""
    mods = masked_weights(model, cfg.targets)
    if not mods:
        raise ConfigError(f"no module matches the targets {cfg.targets}; nothing to prune")
    _check_shapes(mods, cfg.m)
    with torch.no_grad():
        for mod in mods.values():
            set_mask(mod, nm_mask(mod.weight, cfg.n, cfg.m))
    if cfg.finetune_epochs:
        ctx.finetune(model, cfg.finetune_epochs, lr=cfg.lr, description="prune: N:M fine-tune")
    bad = {k: v for k, v in check_nm(model, cfg.n, cfg.m, cfg.targets).items() if v}
    if bad:  # cannot happen while the masks are held; a guard against other stages
        raise ConfigError(f"N:M pattern broken after fine-tuning in {bad}")
    return model

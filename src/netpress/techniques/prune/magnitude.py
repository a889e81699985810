"""Unstructured magnitude pruning, layer-wise or global, with per-layer overrides.

``MagnitudePrune`` zeroes the smallest-magnitude weights in one shot (then optionally
fine-tunes with the mask held on the model). ``prune_to`` is the shared step that the
gradual (AGP) and iterative (Han) schedules call repeatedly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets
from .masking import masked_weights, set_mask
from .masks import global_magnitude_masks, magnitude_mask

Scope = Literal["layer", "global"]


@dataclass(frozen=True)
class LayerSparsity:
    """A per-layer override: modules whose name equals ``name`` (or matches ``re:…``)
    get ``sparsity`` instead of the config's."""

    name: str  # module name, or "re:<regex>" matched against the full name
    sparsity: float  # fraction of this layer's weights set to zero, 0..1

    def matches(self, module_name: str) -> bool:
        """Whether this override applies to ``module_name``."""
        if self.name.startswith("re:"):
            return re.fullmatch(self.name[3:], module_name) is not None
        return self.name == module_name


def check_fraction(value: float, what: str, allow_one: bool = False) -> None:
    """Raise ConfigError unless 0 <= value < 1 (or <= 1 with ``allow_one``)."""
    hi_ok = value <= 1.0 if allow_one else value < 1.0
    if not (0.0 <= value and hi_ok):
        bound = "1" if allow_one else "1 (exclusive)"
        raise ConfigError(f"{what} must be between 0 and {bound}, got {value}")


def check_overrides(overrides: tuple[LayerSparsity, ...]) -> None:
    """Validate every override's sparsity."""
    for o in overrides:
        check_fraction(o.sparsity, f"override {o.name!r} sparsity", allow_one=True)


@torch.no_grad()
def prune_to(
    model: nn.Module,
    sparsity: float,
    scope: Scope = "global",
    targets: Targets = Targets(),
    overrides: tuple[LayerSparsity, ...] = (),
) -> dict[str, float]:
    """Mask ``model`` so its targeted weights reach ``sparsity`` exactly.

    With ``scope="layer"`` every layer loses that fraction; with ``"global"`` the
    fraction is reached over all non-overridden layers together, smallest |w| first.
    Overridden layers always get their own fraction. Weights already masked count as
    zeros, so calling it with rising sparsity never revives a weight.
    Returns each layer's target fraction (``nan`` for layers in the global pool).

    Example:
        >>> m = nn.Sequential(nn.Linear(10, 10))
        >>> prune_to(m, 0.3, scope="layer")
        {'0': 0.3}
        >>> int((m[0].weight == 0).sum())
        30
    """
    mods = masked_weights(model, targets)
    if not mods:
        raise ConfigError(f"no module matches the targets {targets}; nothing to prune")
    fixed: dict[str, float] = {}
    for name in mods:
        for o in overrides:
            if o.matches(name):
                fixed[name] = o.sparsity
    pool = [n for n in mods if n not in fixed]
    plan: dict[str, float] = dict(fixed)
    keeps: dict[str, torch.Tensor] = {}
    for name, s in fixed.items():
        keeps[name] = magnitude_mask(mods[name].weight, s)
    if scope == "layer":
        for name in pool:
            keeps[name] = magnitude_mask(mods[name].weight, sparsity)
            plan[name] = sparsity
    else:
        keeps.update(global_magnitude_masks({n: mods[n].weight for n in pool}, sparsity))
        plan.update({n: float("nan") for n in pool})
    for name, keep in keeps.items():
        set_mask(mods[name], keep)
    return {n: plan[n] for n in mods}


@dataclass(frozen=True)
class MagnitudePrune(Config):
    """One-shot magnitude pruning, then optional fine-tuning with the masks held.

    Example:
        >>> MagnitudePrune(0.9, scope="layer").to_dict()["sparsity"]
        0.9
    """

    sparsity: float = 0.5  # fraction of targeted weights set to zero, 0..1
    scope: Scope = "global"  # "layer": each layer loses that fraction; "global": ranked together
    overrides: tuple[LayerSparsity, ...] = ()  # per-layer fractions that replace `sparsity`
    finetune_epochs: int = 0  # epochs of fine-tuning after pruning (masks held)
    lr: float = 1e-4  # Adam learning rate of the fine-tuning (cosine decay)
    targets: Targets = Targets()  # which modules' weights are pruned

    def validate(self) -> None:
        check_fraction(self.sparsity, "sparsity")
        check_overrides(self.overrides)
        if self.finetune_epochs < 0 or self.lr <= 0:
            raise ConfigError("finetune_epochs must be >= 0 and lr > 0")


@register(MagnitudePrune)
def apply_magnitude_prune(model: nn.Module, cfg: MagnitudePrune, ctx: Context) -> nn.Module:
    """Mask the smallest weights, then fine-tune ``cfg.finetune_epochs`` epochs."""
    prune_to(model, cfg.sparsity, cfg.scope, cfg.targets, cfg.overrides)
    if cfg.finetune_epochs:
        ctx.finetune(model, cfg.finetune_epochs, lr=cfg.lr, description="prune: fine-tune")
    return model

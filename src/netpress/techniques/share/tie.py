"""Cross-layer weight sharing (tying, as in ALBERT): layers of the same structure use
one set of parameters.

Groups of layers are given by the user or found by similarity: layers whose parameter
names and shapes agree are compared by the cosine similarity of their flattened
weights, and a layer joins the first group whose leader is at least ``similarity``
alike. On tying, the leader's tensors become the group's mean (``init="mean"``) or stay
its own (``"first"``), and every member's attributes point at the leader's
``nn.Parameter`` objects, so fine-tuning or distillation updates one tensor. The saved
file stores each shared tensor once (see ``edits.unique_state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError, ModelError
from ...targets import Targets
from ..edits import edit_op, record_edit


def _signature(m: nn.Module) -> tuple:
    return (type(m).__name__,) + tuple((n, tuple(p.shape)) for n, p in m.named_parameters())


def _flat(m: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in m.parameters()]).double()


def similar_groups(model: nn.Module, targets: Targets, similarity: float) -> list[list[str]]:
    """Groups (≥ 2 members) of same-structure layers whose weights have cosine
    similarity ≥ ``similarity`` with the group's first layer.

    Example:
        >>> m = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        >>> with torch.no_grad():
        ...     _ = m[1].weight.copy_(m[0].weight), m[1].bias.copy_(m[0].bias)
        >>> similar_groups(m, Targets(types=("Linear",)), 0.99)
        [['0', '1']]
    """
    groups: list[list[str]] = []
    leaders: list[tuple[tuple, torch.Tensor]] = []
    for name, m in targets.select(model):
        if not any(True for _ in m.parameters()):
            continue
        sig, v = _signature(m), _flat(m)
        for g, (lsig, lv) in zip(groups, leaders, strict=True):
            if lsig == sig and float(F.cosine_similarity(lv, v, dim=0)) >= similarity:
                g.append(name)
                break
        else:
            groups.append([name])
            leaders.append((sig, v))
    return [g for g in groups if len(g) > 1]


def _tie(model: nn.Module, groups: list[list[str]], init: str) -> None:
    mods = dict(model.named_modules())
    for g in groups:
        missing = [n for n in g if n not in mods]
        if missing:
            raise ModelError(f"no layer named {missing[0]!r} to tie")
        members = [mods[n] for n in g]
        sig = _signature(members[0])
        if any(_signature(m) != sig for m in members[1:]):
            raise ModelError(f"layers {g} differ in structure; only identical layers can be tied")
        leader = members[0]
        for pname, p in list(leader.named_parameters()):
            if init == "mean":
                with torch.no_grad():
                    p.copy_(torch.stack([m.get_parameter(pname) for m in members]).mean(0))
            prefix, _, attr = pname.rpartition(".")
            for m in members[1:]:
                setattr(m.get_submodule(prefix) if prefix else m, attr, p)


def tie(model: nn.Module, groups: list[list[str]], init: Literal["mean", "first"] = "mean"):
    """Tie each group's parameters to its first layer's (in place); records the edit.

    Example:
        >>> m = tie(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)), [["0", "1"]])
        >>> m[0].weight is m[1].weight
        True
    """
    _tie(model, groups, init)
    return record_edit(model, {"op": "tie", "groups": [list(g) for g in groups]})


@edit_op("tie")
def _replay_tie(model: nn.Module, edit: dict) -> nn.Module:
    _tie(model, edit["groups"], "first")
    return model


@dataclass(frozen=True)
class Share(Config):
    """Cross-layer weight sharing.

    Example:
        >>> Share(groups=("layer.1,layer.2",)).init
        'mean'
    """

    groups: tuple[str, ...] = ()  # user groups, each "a,b,c" (layer names); overrides similarity
    similarity: float = 0.9  # cosine similarity needed to join a group (when no groups given)
    init: Literal["mean", "first"] = "mean"  # the shared tensor's starting value
    targets: Targets = Targets(types=("Linear", "Conv2d"))  # candidates for similarity
    finetune_epochs: int = 0  # epochs of fine-tuning after tying
    lr: float = 1e-4  # Adam learning rate of that fine-tuning

    def validate(self) -> None:
        if not -1.0 <= self.similarity <= 1.0:
            raise ConfigError(f"similarity must be in [-1, 1], got {self.similarity}")
        for g in self.groups:
            if len([n for n in g.split(",") if n.strip()]) < 2:
                raise ConfigError(f"group {g!r} must name at least two layers, comma-separated")
        if self.finetune_epochs < 0 or self.lr <= 0:
            raise ConfigError("finetune_epochs must be ≥ 0 and lr > 0")


@register(Share)
def apply_share(model: nn.Module, cfg: Share, ctx: Context) -> nn.Module:
    """Tie the configured (or similar) layers, then fine-tune if asked."""
    if cfg.groups:
        groups = [[n.strip() for n in g.split(",") if n.strip()] for g in cfg.groups]
    else:
        groups = similar_groups(model, cfg.targets, cfg.similarity)
    model = tie(model, groups, cfg.init)
    if cfg.finetune_epochs:
        ctx.finetune(model, cfg.finetune_epochs, lr=cfg.lr, description="fine-tune shared")
    return model

"""``L0Regularize``: train hard-concrete gates with an expected-L0 penalty, then cut.

Gates sit on the targeted layers as parametrizations (``gates.HardConcreteGate``): per
weight, or per output row — a Linear's neuron, a Conv's channel. The loss is the task's
plus ``lam`` × the expected share of open gates (below); the shared loop
trains weights and gates together (gates at ``gate_lr``). The penalty is the mean over
gated layers of each layer's expected fraction of open gates, so that a conv layer's
channels (few weights each) are pruned as readily as a wide Linear layer's neurons. At
the end the deterministic gates are folded into the weights: per-weight gates leave zeros
(held by pruning masks), closed row gates are removed for real
(``removal.remove_channels``). The output layer is never gated by rows (its width is the
number of classes).

Example:
    >>> L0Regularize(gates="channels", lam=1.0).gate_lr
    0.05
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets
from .gates import BiasGate, HardConcreteGate
from .removal import remove_channels


@dataclass(frozen=True)
class L0Regularize(Config):
    """Learn which weights, neurons or channels to drop (Louizos et al. 2018).

    Example:
        >>> L0Regularize(gates="weights").to_dict()["gates"]
        'weights'
    """

    gates: Literal["weights", "neurons", "channels"] = "channels"  # neurons: Linear rows only;
    # channels: Conv channels and Linear neurons
    lam: float = 1.0  # weight of the penalty: mean over layers of the expected open-gate share
    epochs: int = 3  # training epochs with the gates
    lr: float = 1e-3  # Adam learning rate of the weights (cosine-decayed)
    gate_lr: float = 0.05  # Adam learning rate of the gates' log_alpha
    init_keep: float = 0.95  # every gate's starting deterministic value (near the baseline)
    targets: Targets = Targets(types=("Linear", "Conv2d"))

    def validate(self) -> None:
        if self.lam < 0 or self.epochs < 1 or self.lr <= 0 or self.gate_lr <= 0:
            raise ConfigError("lam must be >= 0, epochs >= 1, lr and gate_lr > 0")
        if not 0 < self.init_keep < 1:
            raise ConfigError(f"init_keep must be in (0, 1), got {self.init_keep}")


def gated_layers(model: nn.Module, targets: Targets, rows: bool, kinds: tuple[type, ...],
                 example) -> list[tuple[str, nn.Module]]:
    """The targeted layers of ``kinds``; for row gates, without the output layer."""
    from ..prune.structured import output_layers

    skip = {id(m) for m in output_layers(model, example)} if rows else set()
    return [(n, m) for n, m in targets.select(model)
            if isinstance(m, kinds) and id(m) not in skip]


def install_gates(layers, per: str, keep: float) -> list[HardConcreteGate]:
    """Register a gate on each layer's weight (and, for rows, its bias); returns them."""
    out = []
    for _, m in layers:
        g = HardConcreteGate(tuple(m.weight.shape), per, keep)
        parametrize.register_parametrization(m, "weight", g)
        if per == "channel" and getattr(m, "bias", None) is not None:
            parametrize.register_parametrization(m, "bias", BiasGate(g))
        out.append(g)
    return out


def open_share(gates: list[HardConcreteGate]) -> torch.Tensor:
    """The mean over layers of the expected fraction of each layer's gates that are open.

    Example:
        >>> g = HardConcreteGate((4, 2), "channel", keep=0.5)
        >>> round(float(open_share([g])), 3)
        0.832
    """
    from .gates import expected_l0

    return torch.stack([expected_l0(g.log_alpha).mean() for g in gates]).mean()


def fold_gates(layers) -> dict[nn.Module, torch.Tensor]:
    """Bake each layer's deterministic gates into its weights; returns the gate values."""
    values = {}
    for _, m in layers:
        g = m.parametrizations.weight[0]
        g.eval()
        g.last = None
        from .gates import deterministic_gate

        values[m] = deterministic_gate(g.log_alpha.detach())
        for name in ("weight", "bias"):
            if parametrize.is_parametrized(m, name):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    return values


@register(L0Regularize)
def apply_l0(model: nn.Module, cfg: L0Regularize, ctx: Context) -> nn.Module:
    """Train with L0 gates, then fold them: zeros (weights) or removed rows (structured).

    Example:
        >>> from netpress import compress
        >>> compress(model, [L0Regularize(gates="channels", lam=2.0)], ctx)  # doctest: +SKIP
    """
    from ...bake import bake

    bake(model)
    rows = cfg.gates != "weights"
    kinds = (nn.Linear,) if cfg.gates == "neurons" else (nn.Linear, nn.Conv2d)
    example = ctx.example_inputs(1)
    layers = gated_layers(model, cfg.targets, rows, kinds, example)
    if not layers:
        raise ConfigError("L0Regularize found no layer to gate; check targets")
    gates = install_gates(layers, "channel" if rows else "weight", cfg.init_keep)
    task = ctx.task

    def loss_fn(net: nn.Module, x, y: torch.Tensor) -> torch.Tensor:
        return task.loss(net, x, y) + cfg.lam * open_share(gates)

    gate_ids = {id(g.log_alpha) for g in gates}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in gate_ids]
    groups = [{"params": weights}, {"params": [g.log_alpha for g in gates], "lr": cfg.gate_lr}]
    ctx.finetune(model, cfg.epochs, lr=cfg.lr, loss_fn=loss_fn, params=groups,  # type: ignore[arg-type]
                 description=f"L0 gates ({cfg.gates})")
    values = fold_gates(layers)
    model.eval()
    if rows:
        plan = {m: torch.nonzero(z == 0).flatten().tolist() for m, z in values.items()}
        remove_channels(model, plan, example)
    else:
        from ..prune.masking import set_mask

        for m, z in values.items():
            if bool((z == 0).any()):
                set_mask(m, z.view_as(m.weight) != 0)
    return model


def closed_fraction(values: dict[nn.Module, torch.Tensor]) -> float:
    """Share of gates that are exactly zero.

    Example:
        >>> closed_fraction({nn.Linear(1, 1): torch.tensor([0.0, 0.5])})
        0.5
    """
    n = sum(v.numel() for v in values.values())
    return sum(int((v == 0).sum()) for v in values.values()) / max(1, n) if n else math.nan

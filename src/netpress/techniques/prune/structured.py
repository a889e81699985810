"""Structured pruning with physical removal of channels and neurons.

Built on Torch-Pruning (``torch_pruning``): its dependency graph knows which layers
are coupled (a conv and its BatchNorm, both sides of a residual add, the inputs of a
concat, the next layer's input channels) and shrinks them together, so the result is
a smaller dense model, not a masked one. netpress adds the config, the importance
criteria by name, the auto-detection of output layers (never pruned), iterative
steps with fine-tuning between them, and saving/reloading (``resize.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch_pruning as tp
from torch import nn

from ...bake import bake
from ...batches import call
from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets
from .magnitude import LayerSparsity, Scope, check_fraction, check_overrides

Importance = Literal["l1", "l2", "bn_scale", "taylor"]
_NUDGE = 1e-9


@dataclass(frozen=True)
class StructuredPrune(Config):
    """Remove a fraction of the channels/neurons of every prunable layer.

    Example:
        >>> StructuredPrune(0.5, importance="taylor", steps=3).to_dict()["importance"]
        'taylor'
    """

    ratio: float = 0.5  # fraction of output channels removed per layer (kept = floor(n(1-r)))
    importance: Importance = "l1"  # l1/l2 of weights, bn_scale (|γ|), taylor (|w·∂L/∂w|)
    scope: Scope = "layer"  # "layer": every layer loses `ratio`; "global": ranked together
    steps: int = 1  # pruning steps; the ratio rises linearly to its final value
    epochs_between: int = 0  # fine-tuning epochs after each step but the last
    finetune_epochs: int = 0  # fine-tuning epochs after the last step
    lr: float = 1e-4  # Adam learning rate of the fine-tuning (cosine decay)
    max_ratio: float = 0.9  # no layer loses more than this fraction (global scope)
    taylor_batches: int = 8  # calibration batches whose gradients score Taylor importance
    self_distill: float = 0.0  # weight (0..1) of a KL term towards the unpruned model's outputs
    temperature: float = 4.0  # softmax temperature of that KL term
    overrides: tuple[LayerSparsity, ...] = ()  # per-layer ratios that replace `ratio`
    targets: Targets = Targets(types=("Linear", "Conv2d"))  # ignore= names are left whole

    def validate(self) -> None:
        check_fraction(self.ratio, "ratio")
        check_fraction(self.max_ratio, "max_ratio")
        check_overrides(self.overrides)
        if self.steps < 1 or self.epochs_between < 0 or self.finetune_epochs < 0:
            raise ConfigError("steps must be >= 1; epochs_between and finetune_epochs >= 0")
        if self.lr <= 0 or self.taylor_batches < 1 or self.temperature <= 0:
            raise ConfigError("lr and temperature must be > 0 and taylor_batches >= 1")
        check_fraction(self.self_distill, "self_distill", allow_one=True)


def importance_of(name: str, model: nn.Module):
    """The Torch-Pruning importance object for a criterion name.

    Example:
        >>> type(importance_of("l1", nn.Linear(2, 2))).__name__
        'GroupMagnitudeImportance'
    """
    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "bn_scale":
        if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            raise ConfigError("importance 'bn_scale' needs BatchNorm layers; this model has "
                              "none — use l1, l2 or taylor")
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise ConfigError(f"unknown importance {name!r}; use l1, l2, bn_scale or taylor")


@torch.no_grad()
def output_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The prunable layer that runs last in a forward pass: its width is the number of
    classes, so it is never pruned.

    Example:
        >>> m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> output_layers(m, torch.zeros(1, 4)) == [m[2]]
        True
    """
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Linear | nn.modules.conv._ConvNd)]
    was = model.training
    try:
        model.eval()
        call(model, example)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return order[-1:]


def _taylor_grads(model: nn.Module, ctx: Context, batches: int) -> None:
    """Fill .grad with the loss gradient summed over a few calibration batches."""
    model.zero_grad(set_to_none=True)
    model.train()
    for i, (x, y) in enumerate(ctx.calib_loader(batch_size=128)):
        if i >= batches:
            break
        ctx.task.loss(model, x, y).backward()
    model.eval()


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels/features of each Conv and Linear layer (what structured pruning cuts).

    Example:
        >>> channel_counts(nn.Sequential(nn.Linear(3, 5)))
        {'0': 5}
    """
    out = {}
    for n, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            out[n] = m.out_channels
        elif isinstance(m, nn.Linear):
            out[n] = m.out_features
    return out


def structured_prune(model: nn.Module, cfg: StructuredPrune, ctx: Context) -> nn.Module:
    """Prune ``model`` in place as ``cfg`` says; returns it (now smaller).

    Example:
        >>> from netpress.zoo import build_model
        >>> from netpress.data import load_split
        >>> m = structured_prune(build_model("lenet5-caffe"), StructuredPrune(0.5),
        ...                      Context(load_split("digits")))
        >>> m.conv1.out_channels, m.fc1.out_features
        (10, 250)
    """
    bake(model)  # Torch-Pruning needs plain weights, not parametrizations
    loss_fn = None  # the task's loss
    if cfg.self_distill > 0:
        from .schedule import self_distill_loss

        loss_fn = self_distill_loss(ctx.task, copy.deepcopy(model), cfg.self_distill,
                                    cfg.temperature)
    example = ctx.example_inputs(1)
    names = dict(model.named_modules())
    selected = {id(m) for _, m in cfg.targets.select(model)}
    ignored = output_layers(model, example)
    ignored += [m for m in names.values() if isinstance(m, nn.Linear | nn.modules.conv._ConvNd)
                and id(m) not in selected and m not in ignored]
    # Torch-Pruning keeps floor(channels × (1 − ratio)); the nudge stops 1 − 0.8 = 0.1999…
    # from costing a channel to floating-point error.
    ratio_dict = {}
    for n, m in names.items():
        for o in cfg.overrides:
            if n and o.matches(n) and m not in ignored:
                ratio_dict[m] = max(0.0, o.sparsity - _NUDGE)
    pruner = tp.pruner.MetaPruner(
        model, example, importance=importance_of(cfg.importance, model),
        global_pruning=cfg.scope == "global", pruning_ratio=max(0.0, cfg.ratio - _NUDGE),
        pruning_ratio_dict=ratio_dict or None, max_pruning_ratio=cfg.max_ratio,
        iterative_steps=cfg.steps, ignored_layers=ignored,
    )
    for step in range(cfg.steps):
        if cfg.importance == "taylor":
            _taylor_grads(model, ctx, cfg.taylor_batches)
        pruner.step()
        model.zero_grad(set_to_none=True)
        epochs = cfg.epochs_between if step < cfg.steps - 1 else cfg.finetune_epochs
        if epochs:
            ctx.finetune(model, epochs, lr=cfg.lr, loss_fn=loss_fn,
                         description=f"prune: structured step {step + 1}/{cfg.steps}")
    model.eval()
    return model


@register(StructuredPrune)
def apply_structured_prune(model: nn.Module, cfg: StructuredPrune, ctx: Context) -> nn.Module:
    """Physically remove channels (Torch-Pruning), fine-tuning between and after steps."""
    return structured_prune(model, cfg, ctx)

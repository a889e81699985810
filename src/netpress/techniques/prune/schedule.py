"""Pruning interleaved with training: gradual (AGP) and iterative (Han et al.).

- ``GradualPrune``: Zhu & Gupta's automated gradual pruner. During fine-tuning the
  target sparsity rises along a cubic curve from ``initial_sparsity`` to
  ``sparsity``; every ``frequency`` optimiser steps the masks are recomputed from the
  current weights (through the shared training loop's ``on_step`` hook).
  With ``self_distill`` > 0 the loss also pulls the outputs towards those of the
  unpruned model (a frozen copy taken before pruning starts). With ``patience`` > 0,
  ``epochs`` is a cap: once the final sparsity is reached, training stops when validation
  has not improved for ``patience`` epochs, and the best epoch's weights are kept.
- ``IterativePrune``: Han et al.'s prune → retrain loop. Each round removes weights
  with |w| below ``quality`` × the std of the layer's (dense) weights, the threshold
  rising over ``iterations`` rounds to its final value, and retrains at a low rate.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets
from ...tasks.base import Task
from ...train import LossFn
from .magnitude import LayerSparsity, Scope, check_fraction, check_overrides, prune_to
from .masking import masked_weights, set_mask
from .masks import agp_sparsity, threshold_mask


@dataclass(frozen=True)
class GradualPrune(Config):
    """AGP: sparsity rises cubically during ``epochs`` of fine-tuning.

    Example:
        >>> GradualPrune(sparsity=0.92, epochs=4).end_fraction
        0.75
    """

    sparsity: float = 0.9  # final fraction of targeted weights set to zero, 0..1
    initial_sparsity: float = 0.0  # fraction pruned at the first step
    epochs: int = 4  # fine-tuning epochs over which pruning happens and recovers
    start_fraction: float = 0.0  # pruning starts at this fraction of the training steps
    end_fraction: float = 0.75  # final sparsity is reached at this fraction; the rest recovers
    frequency: int = 50  # optimiser steps between mask updates
    scope: Scope = "global"  # "layer" or "global" ranking, as in MagnitudePrune
    overrides: tuple[LayerSparsity, ...] = ()  # per-layer final fractions (ramped alike)
    lr: float = 1e-4  # Adam learning rate of the fine-tuning (cosine decay)
    self_distill: float = 0.0  # weight (0..1) of a KL term pulling towards the unpruned model
    temperature: float = 4.0  # softmax temperature of that KL term
    targets: Targets = Targets()  # which modules' weights are pruned
    patience: int = 0  # >0: after the ramp, stop once val stops improving (epochs = cap)

    def validate(self) -> None:
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        check_fraction(self.sparsity, "sparsity")
        check_fraction(self.initial_sparsity, "initial_sparsity")
        check_fraction(self.self_distill, "self_distill", allow_one=True)
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        check_overrides(self.overrides)
        if self.initial_sparsity > self.sparsity:
            raise ConfigError("initial_sparsity must not exceed sparsity")
        if not 0.0 <= self.start_fraction < self.end_fraction <= 1.0:
            raise ConfigError("need 0 <= start_fraction < end_fraction <= 1")
        if self.epochs < 1 or self.frequency < 1 or self.lr <= 0:
            raise ConfigError("epochs and frequency must be >= 1 and lr > 0")


def self_distill_loss(task: Task, teacher: nn.Module, weight: float, temperature: float) -> LossFn:
    """The task's loss mixed with its distillation term towards ``teacher`` (a frozen copy
    of the unpruned model) at ``temperature``; for classifiers Hinton et al.'s
    ``(1 − weight)·CE + weight·T²·KL``.

    Example:
        >>> from netpress.data import load_split
        >>> from netpress.tasks import ImageClassification
        >>> t = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> task = ImageClassification(load_split("digits"))
        >>> x, y = torch.zeros(2, 4), torch.zeros(2).long()
        >>> loss = self_distill_loss(task, t, 0.5, 4.0)(t, x, y)  # teacher = student: KL 0
        >>> round(float(loss), 4) == round(0.5 * float(task.loss(t, x, y)), 4)
        True
    """
    teacher = teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss(model: nn.Module, x, y: torch.Tensor) -> torch.Tensor:
        out = task.forward(model, x)
        with torch.no_grad():
            target = task.forward(teacher, x)
        return task.distill_loss(out, target, y, temperature, weight)

    return loss


def _ramped(overrides: tuple[LayerSparsity, ...], frac: float) -> tuple[LayerSparsity, ...]:
    return tuple(LayerSparsity(o.name, o.sparsity * frac) for o in overrides)


@register(GradualPrune)
def apply_gradual_prune(model: nn.Module, cfg: GradualPrune, ctx: Context) -> nn.Module:
    """Fine-tune ``cfg.epochs`` epochs, raising sparsity along the AGP curve."""
    total = cfg.epochs * len(ctx.train_loader())
    begin = int(cfg.start_fraction * total)
    end = max(begin + 1, int(cfg.end_fraction * total))

    def update(step: int) -> None:
        s = agp_sparsity(step, cfg.sparsity, begin, end, cfg.initial_sparsity)
        frac = s / cfg.sparsity if cfg.sparsity > 0 else 1.0
        prune_to(model, s, cfg.scope, cfg.targets, _ramped(cfg.overrides, frac))

    loss_fn = None  # the task's loss
    if cfg.self_distill > 0:
        loss_fn = self_distill_loss(ctx.task, copy.deepcopy(model), cfg.self_distill,
                                    cfg.temperature)
    update(0)  # installs the masks before the optimiser sees the parameters

    def on_step(step: int, _total: int) -> None:
        if step % cfg.frequency == 0 and step <= end + cfg.frequency:
            update(step)

    # early stopping only counts epochs after the one in which the ramp ends
    ramp_epochs = -(-(end + cfg.frequency) // len(ctx.train_loader()))
    ctx.finetune(model, cfg.epochs, lr=cfg.lr, on_step=on_step, loss_fn=loss_fn,
                 description="prune: AGP", patience=cfg.patience, min_epochs=ramp_epochs + 1)
    update(total)  # a no-op when the schedule already reached the final sparsity
    return model


@dataclass(frozen=True)
class IterativePrune(Config):
    """Han et al. 2015: prune |w| < quality × std(layer), retrain, repeat.

    Example:
        >>> IterativePrune(quality=1.5, iterations=3).epochs_per_iteration
        1
    """

    quality: float = 1.0  # threshold = quality × std of the layer's dense weights
    iterations: int = 3  # prune → retrain rounds; the threshold reaches its final value last
    epochs_per_iteration: int = 1  # retraining epochs after each pruning round
    lr: float = 1e-4  # Adam learning rate of retraining (lower than training's)
    targets: Targets = Targets()  # which modules' weights are pruned

    def validate(self) -> None:
        if not self.quality > 0 or math.isinf(self.quality):
            raise ConfigError(f"quality must be a positive number, got {self.quality}")
        if self.iterations < 1 or self.epochs_per_iteration < 0 or self.lr <= 0:
            raise ConfigError("iterations must be >= 1, epochs_per_iteration >= 0, lr > 0")


@register(IterativePrune)
def apply_iterative_prune(model: nn.Module, cfg: IterativePrune, ctx: Context) -> nn.Module:
    """Run ``cfg.iterations`` prune → retrain rounds with a rising threshold."""
    mods = masked_weights(model, cfg.targets)
    if not mods:
        raise ConfigError(f"no module matches the targets {cfg.targets}; nothing to prune")
    stds = {n: float(m.weight.detach().std()) for n, m in mods.items()}
    for i in range(cfg.iterations):
        q = cfg.quality * (i + 1) / cfg.iterations
        with torch.no_grad():
            for n, m in mods.items():
                set_mask(m, threshold_mask(m.weight, q, std=stds[n]))
        if cfg.epochs_per_iteration:
            ctx.finetune(model, cfg.epochs_per_iteration, lr=cfg.lr,
                         description=f"prune: retrain {i + 1}/{cfg.iterations}")
    return model

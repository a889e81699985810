"""Recovery after a compression step: fine-tuning that knows when to stop.

Every technique's command recovers the same way, through ``recover``: Adam with a cosine
schedule over a cap of epochs, stopped once the validation score has not improved for
``patience`` epochs (or has reached a score the caller asks for), the best epoch's weights
kept. Weights that are exactly zero when it starts stay zero (a pruned model stays pruned),
and with ``self_distill`` > 0 the loss also pulls the outputs towards a teacher's (the
uncompressed model), which recovers more than labels alone at the same length.

``RECOVERY`` holds the settings that suit each technique; they were measured on
lenet-300-100 / Fashion-MNIST (BENCHMARKS.md, "Budget-driven commands").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from torch import nn

from .context import Context
from .errors import ConfigError
from .targets import Targets
from .train import TrainResult


@dataclass(frozen=True)
class Recovery:
    """How a compressed model is fine-tuned back.

    Example:
        >>> RECOVERY["lowrank"].lr
        0.0005
    """

    lr: float = 1e-4  # Adam learning rate at the start of the cosine schedule
    max_epochs: int = 20  # cap: the cosine schedule spans it
    patience: int = 3  # epochs without a better validation score before stopping
    self_distill: float = 0.0  # weight (0..1) of a KL term towards the uncompressed model
    temperature: float = 2.0  # softmax temperature of that term

    def validate(self) -> None:
        """Raise ConfigError on settings no training can use."""
        if not self.lr > 0 or math.isinf(self.lr):
            raise ConfigError(f"recovery lr must be a positive number, got {self.lr}")
        if self.max_epochs < 1 or self.patience < 0:
            raise ConfigError("recovery needs max_epochs >= 1 and patience >= 0")
        if not 0 <= self.self_distill <= 1 or self.temperature <= 0:
            raise ConfigError("self_distill must be in 0..1 and temperature > 0")

    def with_(self, lr: float | None = None, epochs: int | None = None) -> Recovery:
        """These settings with a user's ``--lr`` and ``--finetune-epochs`` (a fixed length:
        no early stopping) where given.

        Example:
            >>> RECOVERY["prune"].with_(epochs=5)
            Recovery(lr=0.001, max_epochs=5, patience=0, self_distill=0.7, temperature=2.0)
        """
        out = self if lr is None else replace(self, lr=lr)
        return out if epochs is None else replace(out, max_epochs=epochs, patience=0)


RECOVERY: dict[str, Recovery] = {
    # unstructured pruning: AGP's recovery (−0.20 pp at 92 % with these, BENCHMARKS.md)
    "prune": Recovery(lr=1e-3, max_epochs=40, patience=8, self_distill=0.7, temperature=2.0),
    # the short recoveries between the budget search's sparsity steps
    "prune-step": Recovery(lr=1e-3, max_epochs=6, patience=2, self_distill=0.7,
                           temperature=2.0),
    # the final recovery of the rung the budget search keeps
    "prune-final": Recovery(lr=3e-4, max_epochs=8, patience=2, self_distill=0.7,
                            temperature=2.0),
    # low-rank: a short cosine that decays fully (5 epochs at 5e-4: −0.11 pp, BENCHMARKS.md);
    # a 20-epoch cap with patience 3 stopped at epoch 9, lr still high: −0.59 pp
    "lowrank": Recovery(lr=5e-4, max_epochs=10, patience=3),
    "cluster": Recovery(lr=1e-4, max_epochs=10, patience=2),
    "finetune": Recovery(lr=1e-4, max_epochs=10, patience=2),
}


def hold_zeros(model: nn.Module, targets: Targets = Targets()) -> list[nn.Module]:
    """Mask the exact zeros of every targeted weight that has no parametrization yet, so
    training keeps them at zero; returns the modules masked (``release`` them after).

    Example:
        >>> import torch
        >>> m = nn.Sequential(nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = m[0].weight[0].zero_()
        >>> len(hold_zeros(m))
        1
    """
    from torch.nn.utils import parametrize

    from .techniques.prune.masking import mask_of, set_mask

    held = []
    for _, m in targets.select(model):
        w = getattr(m, "weight", None)
        if w is None or mask_of(m) is not None or parametrize.is_parametrized(m, "weight"):
            continue
        keep = w.detach() != 0
        if not bool(keep.all()):
            set_mask(m, keep)
            held.append(m)
    return held


def release(held: list[nn.Module]) -> None:
    """Bake the masks ``hold_zeros`` installed into plain weights."""
    from torch.nn.utils import parametrize

    for m in held:
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)


def recover(
    model: nn.Module,
    ctx: Context,
    settings: Recovery,
    teacher: nn.Module | None = None,
    keep_zeros: bool = True,
    stop_at: float | None = None,
    description: str = "recover",
) -> TrainResult:
    """Fine-tune ``model`` in place until validation stops improving (``settings``).

    ``teacher`` (the uncompressed model) is distilled from when ``settings.self_distill``
    > 0; ``stop_at`` ends training as soon as the validation score reaches it (a budget
    met). Returns the run, with ``best_epoch`` the epoch whose weights were kept.

    Example:
        >>> from netpress.data import load_split
        >>> ctx = Context(load_split("digits"))
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> r = recover(m, ctx, Recovery(lr=1e-2, max_epochs=30, patience=2))
        >>> r.best_epoch <= len(r.val_accuracy) <= 30
        True
    """
    settings.validate()
    loss_fn = None
    if teacher is not None and settings.self_distill > 0:
        import copy

        from .techniques.prune.schedule import self_distill_loss

        loss_fn = self_distill_loss(ctx.task, copy.deepcopy(teacher), settings.self_distill,
                                    settings.temperature)
    held = hold_zeros(model) if keep_zeros else []
    try:
        result = ctx.finetune(model, settings.max_epochs, lr=settings.lr, loss_fn=loss_fn,
                              description=description, patience=settings.patience,
                              stop_at=stop_at)
    finally:
        release(held)
    return result


def budget_step(steps: list[dict], say, key: str, value: float, label: str, score: float,
                floor: float, epochs: int) -> bool:
    """Record one rung of a budget search (``{key: value, "val_score", "epochs",
    "within_budget"}``), say it, and return whether its validation ``score`` kept ``floor``.

    Example:
        >>> steps = []
        >>> budget_step(steps, lambda s: None, "sparsity", 0.5, "sparsity 50%", 0.9, 0.8, 3)
        True
    """
    ok = score >= floor
    steps.append({key: value, "val_score": score, "epochs": epochs, "within_budget": ok})
    say(f"{label}: val {score * 100:.2f} (floor {floor * 100:.2f}) after {epochs} epochs — "
        f"{'kept' if ok else 'over budget, stop'}")
    return ok

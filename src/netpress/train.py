"""One small, honest training loop, reused by fine-tuning, QAT and distillation.

Adam with a cosine learning-rate schedule, fixed thread count and seeded order, so
the same call gives the same weights to the byte. Techniques customise it through
``loss_fn`` (distillation adds a teacher term) and ``on_step`` (gradual pruning
updates masks between steps); they never copy the loop.

Early stopping lives here too, so every technique's recovery stops the same way: with a
validation score (``val_fn``) and ``patience``, ``epochs`` is a cap, training stops once
the score has not improved for ``patience`` epochs (or has reached ``stop_at``), and the
best epoch's weights are put back. Epochs before ``min_epochs`` are never kept as best (a
gradual pruner's model is not final until its schedule ends).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .batches import Inputs, call
from .data.loaders import ArrayLoader
from .ui import progress

LossFn = Callable[[nn.Module, Inputs, torch.Tensor], torch.Tensor]


def cross_entropy_loss(model: nn.Module, x: Inputs, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a classifier's logits: ``fit``'s loss when no task gives one."""
    return F.cross_entropy(call(model, x), y)


@dataclass
class TrainResult:
    """What a training run did: per-epoch mean loss and, if a val loader was given, accuracy."""

    losses: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    steps: int = 0
    best_epoch: int | None = None  # 1-based epoch whose weights were kept (early stopping)
    stopped: str = ""  # why training ended early: "patience", "reached" or "" (ran the cap)

    @property
    def best_score(self) -> float | None:
        """The validation score of the kept epoch (early stopping), else ``None``."""
        return None if self.best_epoch is None else self.val_accuracy[self.best_epoch - 1]
    comm: dict | None = None  # under torchrun: world size, hook, payload bytes per step


def set_threads(threads: int) -> None:
    """Fix the intra-op thread count (results and timings depend on it)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def fit(
    model: nn.Module,
    loader: ArrayLoader,
    epochs: int,
    lr: float = 1e-3,
    seed: int = 0,
    weight_decay: float = 0.0,
    loss_fn: LossFn = cross_entropy_loss,
    on_step: Callable[[int, int], None] | None = None,
    val_loader: ArrayLoader | None = None,
    params: list[nn.Parameter] | None = None,
    threads: int = 2,
    description: str = "train",
    val_fn: Callable[[nn.Module], float] | None = None,
    patience: int = 0,
    min_epochs: int = 0,
    stop_at: float | None = None,
    comm: object | None = None,  # a distributed.CommHook (used under torchrun only)
) -> TrainResult:
    """Train ``model`` in place for ``epochs`` passes over ``loader``.

    ``on_step(step, total_steps)`` runs after every optimiser step. ``params``
    restricts which parameters are trained (default: all that require grad). After each
    epoch, ``val_loader`` gives the top-1 accuracy of a classifier, or ``val_fn(model)`` any
    score (a task's validation score), appended to ``val_accuracy``.

    With ``patience`` > 0 (and a validation score), ``epochs`` is a cap: training stops
    after ``patience`` epochs without a better score, or as soon as the score reaches
    ``stop_at``, and the weights of the best epoch from ``min_epochs`` on are restored
    (``result.best_epoch``). The cosine schedule still spans the cap.

    Example:
        >>> from netpress.data import ArrayLoader
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> ld = ArrayLoader(torch.randn(8, 1, 2, 2), torch.randint(0, 2, (8,)), 4, shuffle=True)
        >>> len(fit(m, ld, epochs=1).losses)
        1
    """
    from .distributed import ddp

    set_threads(threads)
    torch.manual_seed(seed)
    loader.seed, loader.epoch = seed, 0
    net, batches, stats, frozen = model, loader, None, []
    if ddp.active():
        from .distributed.hooks import CommHook, register_hook

        hook = comm or CommHook()
        x0, y0 = next(iter(ddp.ShardedLoader(loader, ddp.rank(), ddp.world_size())))
        frozen = ddp.unused_parameters(model, loss_fn, x0, y0)
        loader.epoch = 0
        for p in frozen:
            p.requires_grad_(False)
        net = ddp.wrap(model)
        stats = register_hook(net, hook)
        batches = ddp.ShardedLoader(loader, ddp.rank(), ddp.world_size())
    trainable = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    total = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    )
    result = TrainResult()
    early = patience > 0 and (val_loader is not None or val_fn is not None)
    best: dict | None = None
    with progress(description, total) as advance:
        for epoch in range(1, epochs + 1):
            model.train()
            running, count = 0.0, 0
            for x, y in batches:
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net, x, y)
                (loss * batches.weight if stats is not None else loss).backward()
                opt.step()
                sched.step()
                result.steps += 1
                running += float(loss.detach()) * len(y)
                count += len(y)
                if on_step is not None:
                    on_step(result.steps, total)
                advance(loss=f"{float(loss.detach()):.4f}")
            result.losses.append(ddp.all_mean(running / max(1, count)))
            if val_loader is not None:
                from .evaluate.metrics import accuracy

                result.val_accuracy.append(accuracy(model, val_loader))
            elif val_fn is not None:
                result.val_accuracy.append(float(val_fn(model)))
            if early and epoch >= min_epochs:
                score = result.val_accuracy[-1]
                if result.best_epoch is None or score > result.best_score:
                    result.best_epoch = epoch
                    best = copy.deepcopy(model.state_dict())
                if stop_at is not None and score >= stop_at:
                    result.stopped = "reached"
                    break
                if epoch - result.best_epoch >= patience:
                    result.stopped = "patience"
                    break
    if best is not None and result.best_epoch != len(result.val_accuracy):
        model.load_state_dict(best)
    model.eval()
    for p in frozen:
        p.requires_grad_(True)
    if stats is not None:
        result.comm = {"world_size": ddp.world_size(), "hook": hook.to_dict(),
                       "steps": stats.steps, "bytes_per_step": stats.bytes_per_step,
                       "allreduce_bytes_per_step": stats.dense_bytes_per_step}
    return result

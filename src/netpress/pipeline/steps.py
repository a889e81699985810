"""Recipe steps that are not techniques: fine-tuning between stages.

``Finetune`` trains the whole model with the shared loop, for ``epochs`` epochs, or with
``patience`` > 0 until validation stops improving (``epochs`` is then a cap and the best
epoch's weights are kept; see ``netpress.recovery``). Weights
that are exactly zero when it starts (what a pruning stage left) are held at zero by a
pruning mask while it trains, and the masks are baked at the end, so a fine-tune
between stages never undoes the sparsity of the stage before it. Put it before weight
sharing or quantization stages: those keep a codebook or grid that plain training would
break (``WeightShare`` has its own codebook fine-tuning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from ..config import Config, register
from ..context import Context
from ..errors import ConfigError
from ..targets import Targets


@dataclass(frozen=True)
class Finetune(Config):
    """Fine-tune every parameter for ``epochs`` epochs at learning rate ``lr`` (with
    ``patience``: until validation stops improving, at most ``epochs``).

    Example:
        >>> Finetune(epochs=20, patience=3).lr
        0.0001
    """

    epochs: int = 1  # full passes over the training data (with patience: the cap)
    lr: float = 1e-4  # Adam learning rate (cosine-decayed over the epochs)
    keep_zeros: bool = True  # hold weights that are exactly zero at zero (pruned stays pruned)
    targets: Targets = Targets()  # whose zeros keep_zeros holds
    patience: int = 0  # >0: stop after this many epochs without a better val score, keep best

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        if not self.lr > 0 or math.isinf(self.lr):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")


@register(Finetune)
def apply_finetune(model: nn.Module, cfg: Finetune, ctx: Context) -> nn.Module:
    """Fine-tune in place, zeros held by masks that are baked afterwards.

    Example:
        >>> from netpress import compress
        >>> compress(model, [Finetune(epochs=1)], ctx)  # doctest: +SKIP
    """
    from ..recovery import hold_zeros, release

    held = hold_zeros(model, cfg.targets) if cfg.keep_zeros else []
    try:
        ctx.finetune(model, cfg.epochs, lr=cfg.lr, description="fine-tune",
                     patience=cfg.patience)
    finally:
        release(held)
    return model

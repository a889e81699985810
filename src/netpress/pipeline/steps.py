"""Recipe steps that are not techniques: fine-tuning between stages.

``Finetune`` trains the whole model for a few epochs with the shared loop. Weights
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
    """Fine-tune every parameter for ``epochs`` epochs at learning rate ``lr``.

    Example:
        >>> Finetune(epochs=2).lr
        0.0001
    """

    epochs: int = 1  # full passes over the training data
    lr: float = 1e-4  # Adam learning rate (cosine-decayed over the epochs)
    keep_zeros: bool = True  # hold weights that are exactly zero at zero (pruned stays pruned)
    targets: Targets = Targets()  # whose zeros keep_zeros holds

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0 or math.isinf(self.lr):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")


@register(Finetune)
def apply_finetune(model: nn.Module, cfg: Finetune, ctx: Context) -> nn.Module:
    """Fine-tune in place, zeros held by masks that are baked afterwards.

    Example:
        >>> from netpress import compress
        >>> compress(model, [Finetune(epochs=1)], ctx)  # doctest: +SKIP
    """
    from torch.nn.utils import parametrize

    from ..techniques.prune.masking import mask_of, set_mask

    held = []
    if cfg.keep_zeros:
        for _, m in cfg.targets.select(model):
            w = getattr(m, "weight", None)
            if w is None or mask_of(m) is not None or parametrize.is_parametrized(m, "weight"):
                continue
            keep = w.detach() != 0
            if not bool(keep.all()):
                set_mask(m, keep)
                held.append(m)
    ctx.finetune(model, cfg.epochs, lr=cfg.lr, description="fine-tune")
    for m in held:
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model

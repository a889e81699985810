"""``TransformerPrune``: remove attention heads and FFN neurons of a Hugging Face model.

Importance comes from the task's loss on calibration batches (Michel et al. 2019 for
heads, first-order Taylor for FFN neurons; ``head_importance.py``) or, with
``importance="magnitude"``, from the weights alone. The chosen units are removed
physically (``heads.py``): the Linear layers shrink, so the model is smaller and faster,
not merely masked. The new shape is recorded as an edit (``transformer_shape``), so saved
weights, run checkpoints and artifacts reload into the shrunk model. Recovery is a
``Finetune`` or ``Distill`` stage after this one (for sentence encoders the task's loss
already pulls towards the uncompressed model's embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from ...bake import bake
from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ..edits import edit_op, edits_of, record_edit
from .head_importance import ffn_importance, ffn_magnitude, head_importance, head_magnitude, select_lowest
from .heads import apply_transformer_shape, remove_ffn_neurons, remove_heads, transformer_shape


@dataclass(frozen=True)
class TransformerPrune(Config):
    """Remove a fraction of attention heads and of FFN neurons from a transformer.

    Example:
        >>> TransformerPrune().ffn, TransformerPrune().heads
        (0.5, 0.0)
    """

    heads: float = 0.0  # fraction of attention heads removed, 0..1 (every layer keeps one)
    ffn: float = 0.5  # fraction of FFN (intermediate) neurons removed, 0..1
    importance: Literal["taylor", "magnitude"] = "taylor"  # loss gradients or weight norms
    scope: Literal["global", "layer"] = "global"  # rank units across layers or per layer
    batches: int = 8  # calibration batches for the Taylor importance

    def validate(self) -> None:
        for name in ("heads", "ffn"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {v}")
        if self.heads == 0 and self.ffn == 0:
            raise ConfigError("set heads or ffn above 0: nothing would be removed")
        if self.batches < 1:
            raise ConfigError(f"batches must be >= 1, got {self.batches}")


def record_shape(model: nn.Module) -> nn.Module:
    """Record the model's current transformer shape as its one ``transformer_shape`` edit."""
    kept = [e for e in edits_of(model) if e.get("op") != "transformer_shape"]
    return record_edit(model, {"op": "transformer_shape", "shape": transformer_shape(model)},
                       inherit=kept)


@edit_op("transformer_shape")
def _replay_shape(model: nn.Module, edit: dict) -> nn.Module:
    return apply_transformer_shape(model, edit["shape"])


@register(TransformerPrune)
def apply_transformer_prune(model: nn.Module, cfg: TransformerPrune, ctx: Context) -> nn.Module:
    """Score heads and FFN neurons, remove the lowest, record the new shape."""
    bake(model)
    task = ctx.task
    batches = []
    for i, b in enumerate(ctx.calib_loader(batch_size=32)):
        if i >= cfg.batches:
            break
        batches.append(b)

    def loss(m: nn.Module, batch) -> object:
        return task.loss(m, *batch)

    if cfg.heads > 0:
        scores = head_importance(model, batches, loss) if cfg.importance == "taylor" \
            else head_magnitude(model)
        remove_heads(model, select_lowest(scores, cfg.heads, cfg.scope))
    if cfg.ffn > 0:
        scores = ffn_importance(model, batches, loss) if cfg.importance == "taylor" \
            else ffn_magnitude(model)
        remove_ffn_neurons(model, select_lowest(scores, cfg.ffn, cfg.scope))
    model.eval()
    return record_shape(model)

"""``TransformerPrune``: remove attention heads and FFN neurons of a Hugging Face model.

Importance comes from the task's loss on calibration batches (Michel et al. 2019 for
heads, first-order Taylor for FFN neurons; ``head_importance.py``) or, with
``importance="magnitude"``, from the weights alone. The chosen units are removed
physically (``heads.py``): the Linear layers shrink, so the model is smaller and faster,
not merely masked. With ``reconstruct`` (the default) the attention output and FFN down
projections that lose inputs are then refitted by least squares on calibration tokens
(``reconstruct.py``), which restores much of what the removed units contributed. The new
shape is recorded as an edit (``transformer_shape``), so saved weights, run checkpoints
and artifacts reload into the shrunk model. Recovery is a
``Finetune`` or ``Distill`` stage after this one (for sentence encoders the task's loss
already pulls towards the uncompressed model's embeddings).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...bake import bake
from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ..edits import edit_op, edits_of, record_edit
from .head_importance import ffn_importance, ffn_magnitude, head_importance, head_magnitude, select_lowest
from .heads import (
    _removal,
    apply_transformer_shape,
    attention_blocks,
    ffn_blocks,
    head_channels,
    remove_ffn_neurons,
    remove_heads,
    transformer_shape,
)
from .reconstruct import full_weight, input_grams, refit_inputs


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
    reconstruct: bool = True  # refit the output/down projections on calibration tokens

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

    calib = list(ctx.calib_loader(batch_size=32)) if cfg.reconstruct else []
    if cfg.heads > 0:
        scores = head_importance(model, batches, loss) if cfg.importance == "taylor" \
            else head_magnitude(model)
        drop = select_lowest(scores, cfg.heads, cfg.scope)
        blocks = attention_blocks(model)
        kept = {layer: head_channels(blocks[layer], heads) for layer, heads in
                _removal(drop, {b.layer: b.num_heads for b in blocks}, "head").items()}
        with _refitted({b.layer: b.out for b in blocks}, kept, model, calib):
            remove_heads(model, drop)
    if cfg.ffn > 0:
        scores = ffn_importance(model, batches, loss) if cfg.importance == "taylor" \
            else ffn_magnitude(model)
        drop = select_lowest(scores, cfg.ffn, cfg.scope)
        blocks = ffn_blocks(model)
        kept = {layer: torch.tensor(units) for layer, units in
                _removal(drop, {b.layer: b.width for b in blocks}, "neuron").items()}
        with _refitted({b.layer: b.down for b in blocks}, kept, model, calib):
            remove_ffn_neurons(model, drop)
    model.eval()
    return record_shape(model)


@contextmanager
def _refitted(projections: dict[int, nn.Module], kept: dict[int, torch.Tensor],
              model: nn.Module, calib: list):
    """Around a removal: read the inputs of the projections that lose inputs (before), then
    refit their kept columns by least squares (after; ``reconstruct.py``). No-op without
    calibration batches."""
    if not calib or not kept:
        yield
        return
    mods = {layer: projections[layer] for layer in kept}
    grams = input_grams(model, mods, calib)
    saved = {layer: full_weight(m) for layer, m in mods.items()}
    yield
    for layer, m in mods.items():
        refit_inputs(m, *saved[layer], grams[layer], kept[layer])

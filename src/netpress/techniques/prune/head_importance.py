"""Which attention heads and FFN neurons matter: gradient scores from data, weight norms without.

Scores use gates: while ``gated(model, …)`` is active, each head's context output (the input
of the attention's output projection, split by head) and each FFN neuron's activation (the
input of the down projection) is multiplied by a gate that is 1 by default, through forward
pre-hooks; nothing in the model changes. With gates set to 0, ``gated`` is also the masked
reference that ``remove_heads`` / ``remove_ffn_neurons`` must reproduce.

- ``head_importance``: Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"), the
  absolute gradient of the loss with respect to each head's gate, summed over batches, by
  default normalized per layer (L2), as in the paper.
- ``ffn_importance``: the same for each neuron's gate, which is the first-order Taylor
  estimate |Σ activation × gradient| of the loss change when the neuron is removed
  (Molchanov et al. 2017), per batch, summed over batches.
- ``head_magnitude`` / ``ffn_magnitude``: L2 norm of each unit's weights, when there is no data.

The caller supplies ``batches`` (dicts of tensors) and ``loss_fn(model, batch) -> scalar``;
this file knows nothing about data sets. Scores are per layer, indexed by current position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from ...errors import ConfigError
from .heads import attention_blocks, ffn_blocks, head_channels, qkv_channels, weight_out_in

LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]


def _head_hook(gate: torch.Tensor, heads: int) -> Callable:
    def hook(_m: nn.Module, args: tuple) -> tuple:
        x = args[0]
        y = (x.reshape(*x.shape[:-1], heads, -1) * gate.to(x.dtype).view(heads, 1)).reshape(x.shape)
        return (y, *args[1:])
    return hook


def _neuron_hook(gate: torch.Tensor) -> Callable:
    def hook(_m: nn.Module, args: tuple) -> tuple:
        return (args[0] * gate.to(args[0].dtype), *args[1:])
    return hook


@contextmanager
def gated(model: nn.Module, heads: Mapping[int, torch.Tensor] | None = None,
          ffn: Mapping[int, torch.Tensor] | None = None) -> Iterator[nn.Module]:
    """Multiply head outputs / FFN activations by per-layer gates while inside the block.

    Example:
        >>> gate = torch.tensor([1.0, 0.0, 1.0, 1.0])  # silence head 1 of layer 0
        >>> with gated(encoder, heads={0: gate}):  # doctest: +SKIP
        ...     masked = encoder(ids, mask)
    """
    handles = []
    try:
        for b in attention_blocks(model):
            if heads and b.layer in heads:
                if (n := heads[b.layer].numel()) != b.num_heads:
                    raise ConfigError(f"layer {b.layer} has {b.num_heads} heads, gate has {n}")
                handles.append(b.out.register_forward_pre_hook(_head_hook(heads[b.layer], b.num_heads)))
        for f in ffn_blocks(model):
            if ffn and f.layer in ffn:
                if (n := ffn[f.layer].numel()) != f.width:
                    raise ConfigError(f"layer {f.layer} has {f.width} FFN neurons, gate has {n}")
                handles.append(f.down.register_forward_pre_hook(_neuron_hook(ffn[f.layer])))
        yield model
    finally:
        for h in handles:
            h.remove()


def _gate_scores(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], loss_fn: LossFn,
                 kind: Literal["heads", "ffn"]) -> dict[int, torch.Tensor]:
    p = next(model.parameters())
    sizes = {b.layer: b.num_heads for b in attention_blocks(model)} if kind == "heads" else \
        {f.layer: f.width for f in ffn_blocks(model)}
    gates = {i: torch.ones(n, device=p.device, dtype=p.dtype, requires_grad=True) for i, n in sizes.items()}
    scores = {i: torch.zeros(n, dtype=torch.float64) for i, n in sizes.items()}
    was_training, seen = model.training, 0
    model.eval()  # no dropout: the scores describe the deployed model
    try:
        with gated(model, **{kind: gates}):
            for batch in batches:
                loss = loss_fn(model, batch)
                grads = torch.autograd.grad(loss, list(gates.values()))
                for i, g in zip(gates, grads, strict=True):
                    scores[i] += g.detach().abs().to(torch.float64).cpu()
                seen += 1
    finally:
        model.train(was_training)
    if not seen:
        raise ConfigError("importance needs at least one batch; pass calibration batches or use the "
                          "magnitude scores")
    return {i: s.float() for i, s in scores.items()}


def head_importance(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], loss_fn: LossFn,
                    normalize: bool = True) -> dict[int, torch.Tensor]:
    """Michel et al. head importance: ``{layer: (heads,)}``, |d loss / d head gate| summed over
    batches, each layer's scores divided by their L2 norm when ``normalize``.

    Example:
        >>> loss = lambda m, b: m(b["input_ids"], b["attention_mask"]).pow(2).mean()
        >>> head_importance(encoder, [batch], loss)[0].shape  # doctest: +SKIP
        torch.Size([12])
    """
    scores = _gate_scores(model, batches, loss_fn, "heads")
    if normalize:
        scores = {i: s / s.norm() if s.norm() > 0 else s for i, s in scores.items()}
    return scores


def ffn_importance(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                   loss_fn: LossFn) -> dict[int, torch.Tensor]:
    """First-order Taylor importance of FFN neurons: ``{layer: (width,)}``, per batch
    |Σ activation × gradient| over tokens, summed over batches.

    Example:
        >>> ffn_importance(encoder, [batch], loss)[0].shape  # doctest: +SKIP
        torch.Size([1536])
    """
    return _gate_scores(model, batches, loss_fn, "ffn")


@torch.no_grad()
def head_magnitude(model: nn.Module) -> dict[int, torch.Tensor]:
    """Data-free head scores: the L2 norm of each head's Q/K/V rows and output-projection columns.

    Example:
        >>> head_magnitude(encoder)[0].shape  # doctest: +SKIP
        torch.Size([12])
    """
    out = {}
    for b in attention_blocks(model):
        sq = []
        for h in range(b.num_heads):
            total = sum(weight_out_in(m)[ch].pow(2).sum() for m, ch in qkv_channels(b, [h]))
            sq.append(total + weight_out_in(b.out)[:, head_channels(b, [h])].pow(2).sum())
        out[b.layer] = torch.stack(sq).sqrt().float().cpu()
    return out


@torch.no_grad()
def ffn_magnitude(model: nn.Module) -> dict[int, torch.Tensor]:
    """Data-free neuron scores: the L2 norm of each neuron's up-projection row and down-projection column.

    Example:
        >>> ffn_magnitude(encoder)[0].shape  # doctest: +SKIP
        torch.Size([1536])
    """
    return {f.layer: (weight_out_in(f.up).pow(2).sum(1) + weight_out_in(f.down).pow(2).sum(0)).sqrt().float()
            .cpu() for f in ffn_blocks(model)}


def select_lowest(scores: Mapping[int, torch.Tensor], fraction: float,
                  scope: Literal["layer", "global"] = "global", min_keep: int = 1) -> dict[int, list[int]]:
    """The lowest-scoring ``fraction`` of units, as ``{layer: [positions]}`` for ``remove_heads`` /
    ``remove_ffn_neurons``; every layer keeps at least ``min_keep`` units. Ties go to the lower position.

    Example:
        >>> select_lowest({0: torch.tensor([3.0, 1.0, 2.0]), 1: torch.tensor([0.5, 4.0])}, 0.4)
        {0: [1], 1: [0]}
    """
    if not 0.0 <= fraction <= 1.0 or min_keep < 1:
        raise ConfigError(f"fraction must be in 0..1 and min_keep >= 1; got {fraction}, {min_keep}")
    if scope == "layer":
        out = {}
        for i, s in scores.items():
            n = min(int(round(fraction * s.numel())), s.numel() - min_keep)
            out[i] = sorted(torch.sort(s, stable=True).indices[:max(n, 0)].tolist())
        return out
    units = sorted(((float(v), i, p) for i, s in scores.items() for p, v in enumerate(s.tolist())))
    budget = int(round(fraction * len(units)))
    left = {i: s.numel() for i, s in scores.items()}
    out = {i: [] for i in scores}
    for _, i, p in units:
        if budget == 0:
            break
        if left[i] > min_keep:
            out[i].append(p)
            left[i] -= 1
            budget -= 1
    return {i: sorted(v) for i, v in out.items()}


__all__ = ["LossFn", "ffn_importance", "ffn_magnitude", "gated", "head_importance", "head_magnitude",
           "select_lowest"]

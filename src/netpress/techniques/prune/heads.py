"""Physical removal of attention heads, FFN neurons and whole layers from transformers models.

Works on BERT-style encoders (BERT, MiniLM, and models laid out the same way),
DistilBERT and GPT-2, bare or inside the ``netpress.zoo.hf`` wrappers. The result is a
smaller dense model: the Q/K/V rows (GPT-2: the fused ``c_attn`` columns) and FFN up-projection
rows of the removed units are cut out, as are the matching input columns of the output and
down projections, and the attributes the attention module reads at forward time are updated
(head count; ``all_head_size``; GPT-2's ``split_size`` and ``Conv1D.nf``/``nx``).

Why our own code: transformers 5 removed ``PreTrainedModel.prune_heads`` (only
``pytorch_utils.prune_linear_layer`` is left, for ``nn.Linear`` alone), and it never pruned
FFN neurons, GPT-2's fused ``Conv1D`` or dropped layers.

Every layer keeps at least one head and one FFN neuron (a head-less attention block would
still add its output bias; to remove a block entirely, drop the layer with
``drop_layers_hf``). Cross-attention blocks of encoder-decoder BERTs are left untouched.
Removal replaces the weight ``Parameter`` objects: build optimizers after it, and bake any
parametrization (mask, fake-quantizer) first.

A pruned model no longer matches its ``config.json``: ``transformer_shape`` describes it
(JSON), and ``apply_transformer_shape`` shrinks a freshly loaded model to it so the saved
weights load strictly. Importance scores live in ``head_importance.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...errors import ConfigError, ModelError

SHAPE_FORMAT = "netpress-transformer-shape/1"


@dataclass(frozen=True)
class _Family:
    name: str
    layers: str  # base model -> ModuleList of blocks
    attn: str  # block -> module that holds the head count
    heads_attr: str  # its head-count attribute
    qkv: tuple[str, ...]  # block -> per-head output projections (one fused module for GPT-2)
    out: str  # block -> projection whose input is the heads' concatenated context
    up: str
    down: str
    ffn_key: str  # config attribute of the FFN width ("" = 4 * hidden size)


_FAMILIES = (
    _Family("bert", "encoder.layer", "attention.self", "num_attention_heads",
            ("attention.self.query", "attention.self.key", "attention.self.value"),
            "attention.output.dense", "intermediate.dense", "output.dense", "intermediate_size"),
    _Family("distilbert", "transformer.layer", "attention", "n_heads",
            ("attention.q_lin", "attention.k_lin", "attention.v_lin"), "attention.out_lin",
            "ffn.lin1", "ffn.lin2", "hidden_dim"),
    _Family("gpt2", "h", "attn", "num_heads", ("attn.c_attn",), "attn.c_proj", "mlp.c_fc", "mlp.c_proj",
            "n_inner"),
)


@dataclass(frozen=True)
class AttentionBlock:
    """The projections of one layer's self-attention."""

    layer: int
    module: nn.Module  # holds the head count the forward reads
    qkv: tuple[nn.Module, ...]  # (query, key, value), or (fused c_attn,) for GPT-2
    out: nn.Module
    num_heads: int
    head_dim: int
    heads_attr: str


@dataclass(frozen=True)
class FFNBlock:
    """The up and down projections of one layer's feed-forward network."""

    layer: int
    up: nn.Module
    down: nn.Module
    width: int


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _base_and_family(model: nn.Module) -> tuple[nn.Module, _Family]:
    for m in model.modules():
        if hasattr(m, "base_model_prefix") and hasattr(m, "config"):  # a transformers PreTrainedModel
            base = m.base_model
            for fam in _FAMILIES:
                layers = _get(base, fam.layers)
                if isinstance(layers, nn.ModuleList) and len(layers) and _get(layers[0], fam.out) is not None:
                    return base, fam
            raise ModelError(f"{type(m).__name__} is not laid out like BERT, DistilBERT or GPT-2; "
                             "head and FFN pruning supports those families only")
    raise ModelError(f"{type(model).__name__} holds no transformers model; load one with netpress.zoo.hf")


def _layers(model: nn.Module) -> tuple[nn.Module, _Family, nn.ModuleList]:
    base, fam = _base_and_family(model)
    return base, fam, _get(base, fam.layers)


def _is_conv1d(m: nn.Module) -> bool:  # transformers' Conv1D: weight (in, out), attributes nf/nx
    return hasattr(m, "nf") and hasattr(m, "nx")


def _out_features(m: nn.Module) -> int:
    return m.nf if _is_conv1d(m) else m.out_features


def _in_features(m: nn.Module) -> int:
    return m.nx if _is_conv1d(m) else m.in_features


def weight_out_in(m: nn.Module) -> torch.Tensor:
    """The weight of a Linear or Conv1D as ``(out, in)``."""
    return m.weight.t() if _is_conv1d(m) else m.weight


def attention_blocks(model: nn.Module) -> list[AttentionBlock]:
    """Per layer, the Q/K/V and output projections of the self-attention.

    Example:
        >>> [b.num_heads for b in attention_blocks(encoder)]  # doctest: +SKIP
        [12, 12, 12, 12, 12, 12]
    """
    _, fam, layers = _layers(model)
    blocks = []
    for i, layer in enumerate(layers):
        attn, out = _get(layer, fam.attn), _get(layer, fam.out)
        heads = int(getattr(attn, fam.heads_attr))
        blocks.append(AttentionBlock(i, attn, tuple(_get(layer, p) for p in fam.qkv), out, heads,
                                     _in_features(out) // heads, fam.heads_attr))
    return blocks


def ffn_blocks(model: nn.Module) -> list[FFNBlock]:
    """Per layer, the FFN up and down projections.

    Example:
        >>> [b.width for b in ffn_blocks(encoder)]  # doctest: +SKIP
        [1536, 1536, 1536, 1536, 1536, 1536]
    """
    _, fam, layers = _layers(model)
    out = []
    for i, layer in enumerate(layers):
        up, down = _get(layer, fam.up), _get(layer, fam.down)
        out.append(FFNBlock(i, up, down, _out_features(up)))
    return out


def head_channels(block: AttentionBlock, heads: Iterable[int]) -> torch.Tensor:
    """The input channels of ``block.out`` that carry ``heads`` (in head order)."""
    d = block.head_dim
    idx = [torch.arange(h * d, (h + 1) * d) for h in heads]
    return torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long)


def qkv_channels(block: AttentionBlock, heads: Iterable[int]) -> list[tuple[nn.Module, torch.Tensor]]:
    """For each Q/K/V module, the output channels that belong to ``heads``."""
    ch = head_channels(block, heads)
    if len(block.qkv) == 1:  # fused [q | k | v]
        e = block.num_heads * block.head_dim
        return [(block.qkv[0], torch.cat([ch, ch + e, ch + 2 * e]))]
    return [(m, ch) for m in block.qkv]


def _check_plain(m: nn.Module) -> None:
    if parametrize.is_parametrized(m):
        raise ConfigError(f"{type(m).__name__} carries a parametrization (mask or quantizer); bake the model "
                          "before removing heads or neurons")


def _new_param(old: nn.Parameter, value: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value.contiguous().clone(), requires_grad=old.requires_grad)


def _keep_out(m: nn.Module, idx: torch.Tensor) -> None:
    """Keep output channels ``idx`` of a Linear or Conv1D."""
    _check_plain(m)
    idx = idx.to(m.weight.device)
    conv = _is_conv1d(m)
    m.weight = _new_param(m.weight, m.weight.index_select(1 if conv else 0, idx))
    if m.bias is not None:
        m.bias = _new_param(m.bias, m.bias.index_select(0, idx))
    if conv:
        m.nf = len(idx)
    else:
        m.out_features = len(idx)


def _keep_in(m: nn.Module, idx: torch.Tensor) -> None:
    """Keep input channels ``idx`` of a Linear or Conv1D (the bias stays)."""
    _check_plain(m)
    idx = idx.to(m.weight.device)
    conv = _is_conv1d(m)
    m.weight = _new_param(m.weight, m.weight.index_select(0 if conv else 1, idx))
    if conv:
        m.nx = len(idx)
    else:
        m.in_features = len(idx)


def _removal(units: Mapping[int, Iterable[int]], sizes: dict[int, int], what: str) -> dict[int, list[int]]:
    """``{layer: kept positions}`` for the layers that lose units; checks indices and the last-unit rule."""
    keep = {}
    for layer, drop in units.items():
        if layer not in sizes:
            raise ConfigError(f"layer {layer} does not exist; the model has layers 0..{len(sizes) - 1}")
        drop_set = {int(u) for u in drop}
        if drop_set and (min(drop_set) < 0 or max(drop_set) >= sizes[layer]):
            raise ConfigError(f"layer {layer} has {what}s 0..{sizes[layer] - 1}; got {sorted(drop_set)}")
        kept = [u for u in range(sizes[layer]) if u not in drop_set]
        if not kept:
            raise ConfigError(f"removing every {what} of layer {layer} is not supported; keep one, or drop "
                              "the whole layer with drop_layers_hf")
        if drop_set:
            keep[layer] = kept
    return keep


@torch.no_grad()
def remove_heads(model: nn.Module, heads: Mapping[int, Iterable[int]]) -> nn.Module:
    """Remove attention heads in place: ``{layer: [head positions]}``, positions counted in the
    layer's current heads. The model computes what it computed with those heads' outputs zeroed.

    Example:
        >>> remove_heads(encoder, {0: [1, 5], 3: [0]})  # doctest: +SKIP
        >>> [b.num_heads for b in attention_blocks(encoder)][:4]  # doctest: +SKIP
        [10, 12, 12, 11]
    """
    blocks = attention_blocks(model)
    keep = _removal(heads, {b.layer: b.num_heads for b in blocks}, "head")
    for layer, kept in keep.items():
        b = blocks[layer]
        original = getattr(b.module, "netpress_heads", list(range(b.num_heads)))
        for m, ch in qkv_channels(b, kept):
            _keep_out(m, ch)
        _keep_in(b.out, head_channels(b, kept))
        setattr(b.module, b.heads_attr, len(kept))
        for attr in ("all_head_size", "split_size"):  # BERT's and GPT-2's width of all heads
            if hasattr(b.module, attr):
                setattr(b.module, attr, len(kept) * b.head_dim)
        b.module.netpress_heads = [original[h] for h in kept]
    return model


@torch.no_grad()
def remove_ffn_neurons(model: nn.Module, neurons: Mapping[int, Iterable[int]]) -> nn.Module:
    """Remove FFN neurons in place: ``{layer: [neuron positions]}``. The model computes what it
    computed with those neurons' activations zeroed.

    Example:
        >>> remove_ffn_neurons(encoder, {0: range(0, 1536, 2)})  # doctest: +SKIP
        >>> ffn_blocks(encoder)[0].width  # doctest: +SKIP
        768
    """
    blocks = ffn_blocks(model)
    keep = _removal(neurons, {b.layer: b.width for b in blocks}, "neuron")
    for layer, kept in keep.items():
        idx = torch.tensor(kept, dtype=torch.long)
        _keep_out(blocks[layer].up, idx)
        _keep_in(blocks[layer].down, idx)
    return model


def drop_layers_hf(model: nn.Module, keep: list[int]) -> nn.Module:
    """Keep only the transformer layers ``keep`` (increasing positions), in place: a layer-dropping
    student. Updates ``config.num_hidden_layers`` and each kept layer's cache index.

    Example:
        >>> drop_layers_hf(encoder, [0, 2, 4]).model.config.num_hidden_layers  # doctest: +SKIP
        3
    """
    base, fam, layers = _layers(model)
    keep = [int(i) for i in keep]
    if not keep or keep != sorted(set(keep)) or keep[0] < 0 or keep[-1] >= len(layers):
        raise ConfigError(f"keep must be increasing layer positions in 0..{len(layers) - 1}; got {keep}")
    if getattr(base.config, "scale_attn_by_inverse_layer_idx", False):
        raise ConfigError("this GPT-2 scales attention by its layer index, which dropping layers would "
                          "change; layer dropping does not support it")
    kept = nn.ModuleList([layers[i] for i in keep])
    for j, (i, layer) in enumerate(zip(keep, kept, strict=True)):
        layer.netpress_source = getattr(layer, "netpress_source", i)
        for m in layer.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = j
    parent_path, _, name = fam.layers.rpartition(".")
    parent = _get(base, parent_path) if parent_path else base
    setattr(parent, name, kept)
    if hasattr(parent, "n_layers"):  # DistilBERT's Transformer keeps its own count
        parent.n_layers = len(kept)
    base.config.num_hidden_layers = len(kept)
    return model


def _config_ffn(config: Any, fam: _Family) -> int:
    width = getattr(config, fam.ffn_key, None)
    return int(width) if width is not None else 4 * int(config.hidden_size)


def transformer_shape(model: nn.Module) -> dict:
    """The per-layer shape of a (pruned) model, as JSON-able data: for each layer its source
    layer in the original model, its kept heads (original indices) and its FFN width.

    Example:
        >>> transformer_shape(encoder)["layers"][0]  # doctest: +SKIP
        {'source': 0, 'heads': [0, 2, 3], 'ffn': 1200}
    """
    _, fam, layers = _layers(model)
    attn, ffn = attention_blocks(model), ffn_blocks(model)
    return {"format": SHAPE_FORMAT, "family": fam.name, "layers": [
        {"source": int(getattr(layer, "netpress_source", i)),
         "heads": [int(h) for h in getattr(a.module, "netpress_heads", range(a.num_heads))],
         "ffn": f.width}
        for i, (layer, a, f) in enumerate(zip(layers, attn, ffn, strict=True))]}


def pruned_shape(model: nn.Module) -> dict | None:
    """``transformer_shape(model)`` when its heads or FFN widths differ from what its config
    builds (so config.json alone cannot rebuild it), else None (also for other model families).

    Example:
        >>> pruned_shape(fresh_encoder) is None  # doctest: +SKIP
        True
    """
    try:
        base, fam = _base_and_family(model)
    except ModelError:
        return None
    heads, ffn = int(base.config.num_attention_heads), _config_ffn(base.config, fam)
    if all(a.num_heads == heads for a in attention_blocks(model)) and \
            all(f.width == ffn for f in ffn_blocks(model)):
        return None
    return transformer_shape(model)


def apply_transformer_shape(model: nn.Module, shape: Mapping[str, Any]) -> nn.Module:
    """Shrink a freshly loaded model in place to ``shape`` (from ``transformer_shape``), so the
    pruned model's weights load into it with ``load_state_dict(strict=True)``.

    The model is either the original (layers are dropped to the shape's sources) or already
    has the shape's layer count (a folder written after dropping layers).

    Example:
        >>> fresh, _ = load_hf(folder)  # doctest: +SKIP
        >>> fresh.load_state_dict(state) if apply_transformer_shape(fresh, shape) else None  # doctest: +SKIP
    """
    _, fam, layers = _layers(model)
    if not isinstance(shape, Mapping) or shape.get("format") != SHAPE_FORMAT:
        raise ModelError(f"not a transformer shape (format {SHAPE_FORMAT}); pass transformer_shape's output")
    if shape.get("family") != fam.name:
        raise ModelError(f"the shape is for a {shape.get('family')} model, this one is {fam.name}; "
                         "load the model the shape was taken from")
    entries = list(shape["layers"])
    sources = [int(e["source"]) for e in entries]
    if len(entries) != len(layers):
        if not sources or max(sources) >= len(layers):
            raise ModelError(f"the shape has layers {sources}, this model {len(layers)} layers; load the "
                             "model the shape was taken from")
        drop_layers_hf(model, sources)
    else:
        for layer, src in zip(layers, sources, strict=True):
            layer.netpress_source = src
    for a, f, e in zip(attention_blocks(model), ffn_blocks(model), entries, strict=True):
        current = list(getattr(a.module, "netpress_heads", range(a.num_heads)))
        wanted = [int(h) for h in e["heads"]]
        if not wanted or not set(wanted) <= set(current) or int(e["ffn"]) > f.width or int(e["ffn"]) < 1:
            raise ModelError(f"layer {a.layer} of the shape ({len(wanted)} heads, FFN {e['ffn']}) does not "
                             f"fit the model ({a.num_heads} heads, FFN {f.width}); load the original model")
        remove_heads(model, {a.layer: [p for p, h in enumerate(current) if h not in wanted]})
        remove_ffn_neurons(model, {a.layer: range(int(e["ffn"]), f.width)})
    return model


__all__ = ["SHAPE_FORMAT", "AttentionBlock", "FFNBlock", "apply_transformer_shape", "attention_blocks",
           "drop_layers_hf", "ffn_blocks", "head_channels", "pruned_shape", "qkv_channels",
           "remove_ffn_neurons", "remove_heads", "transformer_shape", "weight_out_in"]

"""Fused transformer graphs: ONNX Runtime's transformer optimiser on netpress's export.

ONNX Runtime ships the fusions that make an encoder fast on CPU — the embedding with its
LayerNorm (``EmbedLayerNormalization``), the whole self-attention block as one
``Attention`` kernel, residual + LayerNorm (``SkipLayerNormalization``), bias + GELU
(``BiasGelu``) — as pattern matchers in ``onnxruntime.transformers.optimizer``. netpress uses
them rather than its own rewriter; what it adds is what makes them apply and stay right:

- The attention pattern the optimiser knows is the explicit one (MatMul → scale → mask →
  Softmax → MatMul). transformers 5 runs attention through ``scaled_dot_product_attention``
  by default, which the TorchScript exporter writes in another shape that no fusion
  matches (MiniLM: 12 SkipLayerNorms fused, no Attention). ``eager_attention`` switches the
  model to transformers' "eager" attention for the export only.
- Heads removed by pruning leave layers with different head counts. The optimiser takes one
  ``num_heads``; each fused ``Attention`` node's count is then set from its own packed QKV
  weight (columns = 3 × heads × head size).
- Every fused graph is checked against the unfused one on padded inputs before it is kept;
  a graph the optimiser cannot fuse, or fuses wrongly, is exported unfused and the reason
  is returned (``FuseResult.note``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from .onnx import quiet
from .runtimes import import_onnxruntime, ort_session

# Hugging Face model types whose encoder layers the optimiser's BERT fusions match
BERT_LIKE = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization",
             "SkipLayerNormalization", "BiasGelu", "FastGelu", "Gelu", "LayerNormalization")
# fused and unfused graphs compute the same sums in another order
FUSE_REL_TOL = 1e-4


@dataclass
class FuseResult:
    """The graph to keep, what was fused (op counts) and, when nothing was, why."""

    proto: onnx.ModelProto
    fused: dict[str, int] = field(default_factory=dict)
    note: str = ""


def hf_config(model: nn.Module) -> Any | None:
    """The Hugging Face config of a netpress wrapper (``model.model.config``), else None."""
    inner = getattr(model, "model", None)
    return getattr(inner, "config", None) if isinstance(inner, nn.Module) else None


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run a Hugging Face wrapper with transformers' explicit ("eager") attention inside
    the block, and restore its attention implementation after. Other models pass through.

    Example:
        >>> with eager_attention(nn.Linear(2, 2)):
        ...     pass
    """
    inner = getattr(model, "model", None)
    config = hf_config(model)
    old = getattr(config, "_attn_implementation", None) if config is not None else None
    if config is None or old in (None, "eager") or not hasattr(inner, "set_attn_implementation"):
        yield
        return
    inner.set_attn_implementation("eager")
    try:
        yield
    finally:
        inner.set_attn_implementation(old)


def _query_width(node: onnx.NodeProto, shapes: dict, producer: dict) -> int | None:
    """Width of an attention node's query projection: the packed QKV weight of Attention
    (3 × width columns), the packed bias of MultiHeadAttention, or the MatMul weight that
    makes its query."""
    if node.op_type == "Attention":
        return shapes[node.input[1]][-1] // 3 if node.input[1] in shapes else None
    if len(node.input) > 3 and node.input[3] in shapes:
        return shapes[node.input[3]][-1] // 3
    src = producer.get(node.input[0])
    while src is not None and src.op_type in ("Add", "MatMul"):
        w = next((i for i in src.input if i in shapes and len(shapes[i]) == 2), None)
        if w is not None:
            return shapes[w][-1]
        src = next((producer[i] for i in src.input if i in producer), None)
    return None


def _set_heads(proto: onnx.ModelProto, head_size: int) -> None:
    """Give each fused attention node the head count of its own projections."""
    shapes = {i.name: list(i.dims) for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    for node in proto.graph.node:
        if node.op_type not in ("Attention", "MultiHeadAttention"):
            continue
        width = _query_width(node, shapes, producer)
        if width is None:
            continue
        for a in node.attribute:
            if a.name == "num_heads":
                a.i = width // head_size


def _check_inputs(example: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Two rows from the example, the second with its last tokens masked out, so the check
    covers padding."""
    out = {}
    for k, v in example.items():
        two = torch.cat([v[:1], v[:1]])
        if k == "attention_mask" and two.shape[1] > 1:
            two[1, two.shape[1] // 2 + 1:] = 0
        out[k] = np.ascontiguousarray(two.numpy())
    return out


def _outputs(proto: onnx.ModelProto, x: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort_session(proto.SerializeToString(), threads=1)
    return sess.run(None, {i.name: x[i.name] for i in sess.get_inputs()})[0]


def fuse_transformer(proto: onnx.ModelProto, model: nn.Module,
                     example: dict[str, torch.Tensor], separate_qkv: bool = False,
                     embed_layer_norm: bool = True) -> FuseResult:
    """ONNX Runtime's transformer fusions on ``proto`` (exported from the Hugging Face
    wrapper ``model`` with eager attention), checked against ``proto`` on inputs made from
    ``example``. Returns the fused graph, or ``proto`` with a note saying why not.

    ``separate_qkv`` fuses attention as ``MultiHeadAttention`` after its own Q, K and V
    MatMuls (instead of ``Attention`` with one packed QKV weight), so each projection
    keeps its own weight — what a graph whose Linears become MatMulNBits needs.
    ``embed_layer_norm=False`` leaves the token table's Gather in place (a quantized table
    becomes GatherBlockQuantized).

    Example:
        >>> res = fuse_transformer(proto, encoder, task.example_inputs(1))  # doctest: +SKIP
        >>> res.fused["Attention"]  # doctest: +SKIP
        6
    """
    config = hf_config(model)
    if config is None or not isinstance(example, dict):
        return FuseResult(proto, note="not a Hugging Face model: nothing to fuse")
    if config.model_type not in BERT_LIKE:
        return FuseResult(proto, note=f"no fusion for model type {config.model_type!r} "
                                      f"(fused: {', '.join(BERT_LIKE)})")
    if any(n.op_type in ("QuantizeLinear", "MatMulNBits") for n in proto.graph.node):
        return FuseResult(proto, note="quantized graphs are fused before quantizing, not after")
    import_onnxruntime()  # telemetry off before the optimiser imports onnxruntime
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = int(config.num_attention_heads), int(config.hidden_size)
    try:
        options = FusionOptions("bert")
        options.use_multi_head_attention = separate_qkv
        options.enable_embed_layer_norm = embed_layer_norm
        with quiet(("onnxruntime.transformers", "fusion_base", "onnx_model", "")):
            opt = optimize_model(onnx.ModelProto.FromString(proto.SerializeToString()),
                                 model_type="bert", num_heads=heads, hidden_size=hidden,
                                 optimization_options=options, opt_level=0)
        fused = opt.model
        if not any(o.domain == "com.microsoft" for o in fused.opset_import):
            fused.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
        _set_heads(fused, hidden // heads)
        x = _check_inputs(example)
        ref, out = _outputs(proto, x), _outputs(fused, x)
    except Exception as e:  # the optimiser raises many types; keep the unfused graph
        return FuseResult(proto, note=f"fusion failed ({type(e).__name__}: "
                                      f"{str(e).splitlines()[0] if str(e) else ''}); kept unfused")
    counts = Counter(n.op_type for n in fused.graph.node)
    done = {op: counts[op] for op in FUSED_OPS if counts[op]}
    if not counts["Attention"] and not counts["MultiHeadAttention"]:
        return FuseResult(proto, note="the optimiser fused no attention block; kept unfused")
    if out.shape != ref.shape:
        return FuseResult(proto, note=f"the fused graph gives outputs of shape {out.shape}, "
                                      f"the unfused one {ref.shape}; kept unfused")
    err = float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12))
    if not err <= FUSE_REL_TOL:
        return FuseResult(proto, note=f"the fused graph differs from the unfused one "
                                      f"(relative error {err:.1e}); kept unfused")
    return FuseResult(fused, done)

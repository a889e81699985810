"""Activation smoothing (after SmoothQuant, Xiao et al. 2023) for dynamic int8 graphs.

ONNX Runtime's dynamic quantizer quantizes each MatMul's input with one scale per tensor.
Transformer activations have a few outlier channels — in all-MiniLM-L6-v2 one channel of
every LayerNorm output and of the first FFN-down inputs reaches 15-30 where the median
channel stays near 2 — so that one scale leaves the other channels a handful of int8
levels. Smoothing moves the range from the activation into the weight, exactly in float:

    X · W = (X · diag(1/s)) · (diag(s) · W),    s_j = max|X_j|^α / max|W_j|^(1-α)

for every input channel j, with ``max|X_j|`` measured on calibration inputs. The graph gets
one ``Mul`` by ``1/s`` on the edge into each MatMul (or fused ``Attention``), and the weight's
rows are scaled by ``s``; the fp32 graph computes the same function (to float rounding),
and the int8 graph made from it sees flatter activations. The original paper folds
``1/s`` into the preceding LayerNorm; in a post-LN encoder (BERT) that LayerNorm's output
is also the residual stream, so netpress puts the ``Mul`` on the quantized edge only (one
elementwise op per layer input: a small cost against the MatMul it feeds).

ONNX Runtime's quantization tools have SmoothQuant only for static QDQ models through
Intel Neural Compressor; this graph pass works on the fused graph before the dynamic
quantizer, with nothing but ONNX Runtime itself. ``alpha`` is chosen on the task's
validation part by ``export.int8``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..batches import Inputs
from .runtimes import feeds, ort_session

# ops whose second input is a weight (in, out) applied to their first input
SMOOTHED_OPS = ("MatMul", "Attention")
EPS = 1e-5
REL_FLOOR = 1e-2  # a channel's calibration range is at least this share of the median


def smoothable(proto: onnx.ModelProto) -> list[int]:
    """Positions of the nodes smoothing applies to: MatMul / fused Attention with a
    constant 2-D weight as their second input and an activation as their first.

    Example:
        >>> smoothable(onnx.ModelProto())
        []
    """
    consts = {i.name: i for i in proto.graph.initializer}
    return [k for k, n in enumerate(proto.graph.node)
            if n.op_type in SMOOTHED_OPS and n.domain in ("", "com.microsoft")
            and len(n.input) >= 2 and n.input[1] in consts and n.input[0] not in consts
            and len(consts[n.input[1]].dims) == 2]


def input_ranges(proto: onnx.ModelProto, batches: list[Inputs], threads: int = 2
                 ) -> dict[str, np.ndarray]:
    """Per-channel ``max |x|`` (over every other axis and every batch) of the first input
    of each smoothable node, measured by running the float graph on ``batches``.

    Example:
        >>> input_ranges(proto, [task.example_inputs(8, "calib")])  # doctest: +SKIP
        {'/encoder/layer.0/attention/Attention_input': array([...])}
    """
    names = sorted({proto.graph.node[k].input[0] for k in smoothable(proto)})
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    present = {o.name for o in probe.graph.output}
    for name in names:
        if name not in present:
            probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                    None))
    sess = ort_session(probe.SerializeToString(), threads, optimize=False)
    inputs = [i.name for i in sess.get_inputs()]
    ranges: dict[str, np.ndarray] = {}
    for b in batches:
        got = sess.run(names, feeds(inputs, b))
        for name, a in zip(names, got, strict=True):
            m = np.abs(a.reshape(-1, a.shape[-1])).max(axis=0)
            ranges[name] = m if name not in ranges else np.maximum(ranges[name], m)
    return ranges


def smooth(proto: onnx.ModelProto, ranges: dict[str, np.ndarray], alpha: float = 0.5
           ) -> onnx.ModelProto:
    """A copy of ``proto`` with each smoothable node's input divided per channel by ``s``
    and its weight's rows multiplied by ``s`` (see the module docstring).

    Example:
        >>> smooth(proto, input_ranges(proto, batches), alpha=0.5)  # doctest: +SKIP
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    inits = {i.name: i for i in out.graph.initializer}
    uses: dict[str, int] = {}
    for n in out.graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    targets = set(smoothable(out))
    taken = {i.name for i in out.graph.initializer} | {o for n in out.graph.node for o in n.output}
    taken |= {i.name for i in out.graph.input}

    def fresh(base: str) -> str:  # a name no tensor of the graph has yet
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    new_nodes = []
    for k, n in enumerate(out.graph.node):
        n = onnx.NodeProto.FromString(n.SerializeToString())
        if k in targets and n.input[0] in ranges:
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            x_max = ranges[n.input[0]].astype(np.float64)
            # a channel (almost) silent on calibration would get s ~ 0 and 1/s huge: any
            # activation there at run time would then set the whole tensor's scale
            x_max = np.maximum(x_max, max(EPS, REL_FLOOR * float(np.median(x_max))))
            w_max = np.maximum(np.abs(w).max(axis=1).astype(np.float64), EPS)
            if x_max.shape[0] != w.shape[0]:
                new_nodes.append(n)
                continue
            s = (x_max ** alpha / w_max ** (1 - alpha)).clip(EPS, None)
            s = (s / np.exp(np.mean(np.log(s)))).astype(np.float32)  # geometric mean 1
            w_name = n.input[1]
            if uses.get(w_name, 0) > 1:  # a shared weight gets its own scaled copy
                w_name = fresh(f"{w_name}_smoothed")
            scaled = numpy_helper.from_array((w * s[:, None]).astype(np.float32), w_name)
            if w_name == n.input[1]:
                inits[w_name].CopyFrom(scaled)
            else:
                out.graph.initializer.append(scaled)
            base = n.name or f"node{k}"
            inv, x_s = fresh(f"{base}_smooth_inv"), fresh(f"{base}_smoothed_input")
            out.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv))
            new_nodes.append(helper.make_node("Mul", [n.input[0], inv], [x_s],
                                              name=fresh(f"{base}_smooth")))
            n.input[0] = x_s
            n.input[1] = w_name
        new_nodes.append(n)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    used = {i for n in out.graph.node for i in n.input} | {o.name for o in out.graph.output}
    keep = [i for i in out.graph.initializer if i.name in used]  # shared originals all copied
    del out.graph.initializer[:]
    out.graph.initializer.extend(keep)
    return out

"""Dynamic int8 in ONNX Runtime, with the layers that cost the most kept float.

ONNX Runtime's dynamic quantizer (``onnxruntime.quantization.quantize_dynamic``) makes the
graph: int8 weights per output channel, activations quantized per tensor at run time, a
fused encoder's attention as ``QAttention``. Per-tensor activations lose most where a
layer's inputs have outlier channels; on all-MiniLM-L6-v2 every layer costs a little and
all of them together take the mean cosine to 0.991 and recall@10 to 0.86.

``int8_dynamic`` first smooths the float graph (``export.smooth``: the outlier channels'
range moved into the weights, exactly in float) with the strength ``alpha`` that gives the
best validation score (no smoothing is one of the candidates). On all-MiniLM-L6-v2 that
alone takes the all-int8 graph from cosine 0.991 / recall@10 0.86 to 0.997 / 0.92.

With a budget it then spends it instead of guessing (``int8_within``): it measures the
task's validation score with each quantizable node alone left float (its sensitivity),
then keeps the most sensitive nodes float, one more at a time, until the score is within
``max_drop_pp`` of the float graph's. Choices use the calibration part (activation ranges)
and the validation part (alpha, layers kept float) only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from ..errors import ConfigError, ModelError
from ..profile.throughput import held_out_batches
from .onnx import quiet
from .runtimes import import_onnxruntime, ort_runner
from .smooth import input_ranges, smooth, smoothable

# smoothing strengths tried on validation (None: the graph as exported)
ALPHAS = (None, 0.5, 0.7, 0.85, 1.0)
CALIB_BATCH = 32

# nodes ONNX Runtime's dynamic quantizer turns into int8 kernels
INT8_OPS = ("MatMul", "Gemm", "Attention", "EmbedLayerNormalization", "Conv", "Gather")


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has VNNI int8 dot products (``avx512_vnni`` or ``avx_vnni`` in
    ``/proc/cpuinfo``); unknown counts as no.

    Example:
        >>> cpu_has_vnni("flags : avx2 avx512f avx512_vnni"), cpu_has_vnni("flags : avx2")
        (True, False)
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_vnni", "avx_vnni"})


def ort_dynamic(fp32_onnx: str | os.PathLike, out: str | os.PathLike,
                exclude: list[str] | tuple[str, ...] = (),
                reduce_range: bool | None = None) -> Path:
    """ONNX Runtime's dynamic quantizer with per-channel int8 weights: MatMul/Gemm weights
    per output channel, a fused transformer's ``Attention`` as ``QAttention`` and its
    ``EmbedLayerNormalization`` tables in 8 bits (Gather tables of plain graphs too);
    the nodes named in ``exclude`` stay float.

    Fused graphs hold com.microsoft ops whose outputs ONNX shape inference cannot type; the
    quantizer is told they are float (``DefaultTensorType``), which they are in an fp32
    export.

    ``reduce_range`` (default: on CPUs without VNNI) makes the weights 7-bit, as the CNN
    path's static int8 does: on AVX2 without VNNI the u8·s8 kernels add pairs of products
    in saturating int16, which 8-bit weights can overflow. The choice is made on the
    machine that exports; a file made here for an AVX2-only server should pass True.

    Example:
        >>> ort_dynamic("fp32.onnx", "int8.onnx", exclude=["/fc2/MatMul"])  # doctest: +SKIP
    """
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    import_onnxruntime()  # telemetry off before onnxruntime is first imported
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet(("",)):  # it logs a pre-processing hint to the root logger on every call
        # the quantizer turns each Gemm into a MatMul named "<gemm>_MatMul" before it reads
        # nodes_to_exclude: name both so a Gemm kept float stays float
        names = [*exclude, *(f"{n}_MatMul" for n in exclude)]
        try:
            quantize_dynamic(str(fp32_onnx), str(out), per_channel=True,
                             reduce_range=reduce_range,
                             weight_type=QuantType.QInt8, nodes_to_exclude=names,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        except Exception as e:  # the quantizer raises many types; say which step failed
            raise ModelError(f"ONNX Runtime's dynamic quantizer failed on {fp32_onnx} "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                             "export --form fp32") from e
    return Path(out)


def quantizable_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes the dynamic quantizer makes int8 (those with a constant weight).

    Example:
        >>> quantizable_nodes(onnx.ModelProto())
        []
    """
    consts = {i.name for i in proto.graph.initializer}

    def weighted(n: onnx.NodeProto) -> bool:  # a Gather's table is its first input
        return (n.input[0] in consts) if n.op_type == "Gather" else \
            any(i in consts for i in n.input[1:3])

    return [n.name for n in proto.graph.node
            if n.op_type in INT8_OPS and n.name and weighted(n)]


def int8_dynamic(fp32_onnx: str | os.PathLike, out: str | os.PathLike, task,
                 max_drop_pp: float | None = None, threads: int = 2,
                 alphas: tuple[float | None, ...] = ALPHAS,
                 say: Callable[[str], None] = lambda s: None) -> dict:
    """Write to ``out`` the dynamic-int8 graph of ``fp32_onnx``: smoothed with the alpha
    of ``alphas`` whose int8 graph scores best on validation, then, with ``max_drop_pp``,
    with the fewest layers kept float that keep the validation score within the budget
    (``int8_within``). Returns what was chosen and measured.

    Example:
        >>> int8_dynamic("fp32.onnx", "int8.onnx", task)["alpha"]  # doctest: +SKIP
        0.85
    """
    if max_drop_pp is not None and max_drop_pp < 0:
        raise ConfigError(f"--max-drop-pp must be 0 or more, got {max_drop_pp}")

    def score(path) -> float:
        return task.score_outputs(*task.runner_outputs(ort_runner(path, threads), "val"))

    proto = onnx.load(str(fp32_onnx))
    if not smoothable(proto):  # e.g. a CNN: Conv / Gemm only, nothing to smooth
        alphas = (None,)
    rec: dict = {"alphas": {}, "reduce_range": not cpu_has_vnni()}
    with tempfile.TemporaryDirectory(prefix="netpress-smooth-") as d:
        ranges = None
        best = (float("-inf"), None, Path(fp32_onnx), Path(d))
        for alpha in alphas:
            src = Path(fp32_onnx)
            if alpha is not None:
                if ranges is None:
                    ranges = input_ranges(proto, held_out_batches(task.part("calib")[0],
                                                                  CALIB_BATCH), threads)
                src = Path(d) / f"smoothed-{alpha}.onnx"
                onnx.save(smooth(proto, ranges, alpha), str(src))
            q = ort_dynamic(src, Path(d) / f"int8-{alpha}.onnx")
            got = score(q)
            rec["alphas"][str(alpha)] = got
            say(f"int8 with smoothing alpha {alpha}: validation score {got:.4f}")
            if got > best[0]:
                best = (got, alpha, src, q)
        rec["alpha"] = best[1]
        if max_drop_pp is None:
            shutil.copyfile(best[3], out)
            return {**rec, "kept_float": [], "val_score": best[0],
                    "val_score_fp32": score(fp32_onnx)}
        return {**rec, **int8_within(best[2], out, task, max_drop_pp, threads, say,
                                     all_int8=(best[3], best[0]))}


def int8_within(fp32_onnx: str | os.PathLike, out: str | os.PathLike, task,
                max_drop_pp: float, threads: int = 2,
                say: Callable[[str], None] = lambda s: None,
                all_int8: tuple[Path, float] | None = None) -> dict:
    """Write to ``out`` the dynamic-int8 graph of ``fp32_onnx`` that keeps the fewest
    nodes float while its validation score is within ``max_drop_pp`` (percentage points
    of the task's score) of the float graph's. Returns what was kept and measured.
    ``all_int8`` is the every-layer int8 graph of ``fp32_onnx`` and its score, when the
    caller has them already.

    Example:
        >>> rec = int8_within("fp32.onnx", "int8.onnx", task, 0.5)  # doctest: +SKIP
        >>> rec["kept_float"], rec["val_score"]  # doctest: +SKIP
        (['/model/encoder/layer.0/output/dense/MatMul'], 0.9953)
    """
    if max_drop_pp < 0:
        raise ConfigError(f"--max-drop-pp must be 0 or more, got {max_drop_pp}")

    def score(path) -> float:
        return task.score_outputs(*task.runner_outputs(ort_runner(path, threads), "val"))

    base = score(fp32_onnx)
    floor = base - max_drop_pp / 100
    with tempfile.TemporaryDirectory(prefix="netpress-int8-") as d:
        trial = Path(d) / "trial.onnx"
        if all_int8 is None:
            q = ort_dynamic(fp32_onnx, Path(d) / "all.onnx")
            all_int8 = (q, score(q))
        full = all_int8[1]
        rec = {"max_drop_pp": max_drop_pp, "val_score_fp32": base, "val_score_all_int8": full,
               "kept_float": [], "sensitivity": {}}
        if full >= floor:
            shutil.copyfile(all_int8[0], out)
            return {**rec, "val_score": full}
        nodes = quantizable_nodes(onnx.load(str(fp32_onnx)))
        say(f"int8 loses {(base - full) * 100:.2f} pp on validation; measuring "
            f"{len(nodes)} layers one by one")
        sens = {n: score(ort_dynamic(fp32_onnx, trial, exclude=[n])) for n in nodes}
        rec["sensitivity"] = sens
        order = sorted(nodes, key=lambda n: -sens[n])
        for k in range(1, len(order) + 1):
            got = score(ort_dynamic(fp32_onnx, trial, exclude=order[:k]))
            if got >= floor:
                shutil.copyfile(trial, out)
                say(f"{k} of {len(nodes)} layers kept float: validation score {got:.4f}")
                return {**rec, "kept_float": order[:k], "val_score": got}
    raise ConfigError(f"no dynamic int8 graph stays within {max_drop_pp} pp on validation "
                      f"(all int8: {(base - full) * 100:.2f} pp); raise --max-drop-pp or "
                      "export --form fp32")

"""Runners for deployed forms: ONNX Runtime and (optional extra) OpenVINO sessions.

A runner is ``fn(x: torch.Tensor) -> torch.Tensor`` — what ``netpress.profile.measure``
times. Sessions use an explicit thread count and no spinning, so a measurement does not
burn the other cores of a shared machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from ..errors import NetpressError

Runner = Callable[[torch.Tensor], torch.Tensor]


class MissingExtra(NetpressError):
    """An optional dependency is not installed."""


def ort_session(path: str | os.PathLike, threads: int = 2, optimize: bool = True):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and spinning off.

    Example:
        >>> ort_session("model.onnx")  # doctest: +SKIP
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_runner(path: str | os.PathLike, threads: int = 2) -> Runner:
    """A runner over an ONNX Runtime session of ``path`` (first input, first output).

    Example:
        >>> run = ort_runner("model.onnx")  # doctest: +SKIP
    """
    sess = ort_session(path, threads)
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {name: x.numpy()})[0])

    return run


def _import_openvino():
    """Import ``openvino`` with ``$HOME`` pointed at a throwaway folder.

    The package sets up its telemetry when it is imported (its model converter is imported
    too). That writes a client id and usage counts to ``~/intel``, and netpress does not
    write to the home folder. The telemetry finds that folder through ``$HOME``, so for
    the import ``$HOME`` is a temporary folder holding an opt-out consent file (without
    one, a fresh folder reads as consent), deleted afterwards. Inference does not touch
    telemetry. (On Windows the telemetry uses ``%LOCALAPPDATA%``; netpress targets Linux.)
    """
    import sys
    import tempfile

    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    old = os.environ.get("HOME")
    with tempfile.TemporaryDirectory(prefix="netpress-openvino-") as home:
        os.makedirs(os.path.join(home, "intel"))
        with open(os.path.join(home, "intel", "openvino_telemetry"), "w") as f:
            f.write("0")  # opted out: no client id, no events
        os.environ["HOME"] = home
        try:
            import openvino
        finally:
            if old is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = old
    return openvino


def openvino_available() -> bool:
    """Whether the optional ``openvino`` extra is installed."""
    try:
        _import_openvino()
    except ImportError:
        return False
    return True


def openvino_runner(path: str | os.PathLike, threads: int = 2) -> Runner:
    """A runner over an OpenVINO CPU compiled model of the ONNX file ``path`` (QDQ models
    are fused into int8 kernels by OpenVINO).

    Example:
        >>> run = openvino_runner("model.onnx")  # doctest: +SKIP
    """
    if not openvino_available():
        raise MissingExtra("OpenVINO is not installed; install the extra with "
                           "`pip install 'netpress[openvino]'` or use --backend onnxruntime")
    ov = _import_openvino()
    core = ov.Core()
    compiled = core.compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> torch.Tensor:
        out = request.infer({0: np.ascontiguousarray(x.numpy())})
        return torch.from_numpy(np.array(next(iter(out.values()))))

    return run


@torch.inference_mode()
def runner_logits(run: Runner, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """All outputs of ``run`` over ``x`` in batches."""
    return torch.cat([run(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def runner_accuracy(run: Runner, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (0..1) of a deployed form on ``(x, y)``.

    Example:
        >>> runner_accuracy(lambda t: torch.eye(3)[:len(t)], torch.zeros(3, 1), torch.arange(3))
        1.0
    """
    return float((runner_logits(run, x).argmax(1) == y).float().mean())

"""Runners for deployed forms: ONNX Runtime and (optional extra) OpenVINO sessions.

A runner is ``fn(inputs) -> torch.Tensor`` — what ``netpress.profile.measure`` times —
where ``inputs`` is what the task gives: one tensor (images) or a dict of tensors (token
ids, attention mask…). A runner feeds the graph exactly its inputs: the one tensor, or
the dict's entries the graph names (a model that ignores ``token_type_ids`` exports
without it). Sessions use an explicit thread count and no spinning, so a measurement does
not burn the other cores of a shared machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from ..batches import Inputs, concat, count, take
from ..errors import ModelError, NetpressError
from ..runtime.model import import_onnxruntime, session_options  # noqa: F401 - re-exported

Runner = Callable[[Inputs], torch.Tensor]


class MissingExtra(NetpressError):
    """An optional dependency is not installed."""


def ort_session(path: str | os.PathLike | bytes, threads: int = 2, optimize: bool = True):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and spinning off, of
    an ONNX file or a serialized model (bytes).

    Example:
        >>> ort_session("model.onnx")  # doctest: +SKIP
    """
    ort = import_onnxruntime()
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, session_options(threads, optimize),
                                providers=["CPUExecutionProvider"])


def feeds(names: list[str], inputs: Inputs) -> dict[str, np.ndarray]:
    """The arrays a graph with inputs ``names`` takes from ``inputs``: a tensor feeds the
    only input, a tuple feeds the inputs in order, a dict feeds each named input (its
    other entries are left out).

    Example:
        >>> sorted(feeds(["input_ids"], {"input_ids": torch.ones(1, 3), "x": torch.ones(1)}))
        ['input_ids']
    """
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ModelError(f"the ONNX model needs inputs {missing} but the data gives "
                             f"{sorted(inputs)}; export it from the same model and task")
        return {n: np.ascontiguousarray(inputs[n].numpy()) for n in names}
    arrays = list(inputs) if isinstance(inputs, tuple | list) else [inputs]
    if len(arrays) != len(names):
        raise ModelError(f"the ONNX model takes {len(names)} inputs ({', '.join(names)}), "
                         f"the data gives {len(arrays)}; export it from the same model and task")
    return {n: np.ascontiguousarray(a.numpy()) for n, a in zip(names, arrays, strict=True)}


def ort_runner(path: str | os.PathLike, threads: int = 2) -> Runner:
    """A runner over an ONNX Runtime session of ``path`` (its inputs, first output).

    Example:
        >>> run = ort_runner("model.onnx")  # doctest: +SKIP
        >>> run({"input_ids": ids, "attention_mask": mask}).shape  # doctest: +SKIP
        torch.Size([2, 384])
    """
    sess = ort_session(path, threads)
    names = [i.name for i in sess.get_inputs()]

    def run(x: Inputs) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, feeds(names, x))[0])

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
    names = [i.get_any_name() for i in compiled.inputs]

    def run(x: Inputs) -> torch.Tensor:
        out = request.infer(feeds(names, x))
        return torch.from_numpy(np.array(next(iter(out.values()))))

    return run


@torch.inference_mode()
def runner_logits(run: Runner, x: Inputs, batch_size: int = 1000) -> torch.Tensor:
    """All outputs of ``run`` over ``x`` (a tensor or a dict of tensors) in batches.

    Example:
        >>> runner_logits(lambda t: t["a"] * 2, {"a": torch.ones(3, 1)}, 2).tolist()
        [[2.0], [2.0], [2.0]]
    """
    n = count(x)
    return concat([run(take(x, slice(i, i + batch_size))).float()
                   for i in range(0, n, batch_size)])


def runner_accuracy(run: Runner, x: Inputs, y: torch.Tensor) -> float:
    """Top-1 accuracy (0..1) of a deployed form on ``(x, y)``.

    Example:
        >>> runner_accuracy(lambda t: torch.eye(3)[:len(t)], torch.zeros(3, 1), torch.arange(3))
        1.0
    """
    return float((runner_logits(run, x).argmax(1) == y).float().mean())

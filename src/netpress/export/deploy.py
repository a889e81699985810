"""``export_model``: any model netpress wrote, exported to one ONNX file that a plain ONNX
Runtime session runs, checked against the torch model and timed against it.

Forms (``form``):

- ``fp32`` — the float graph; a Hugging Face encoder is fused (``export.fuse``);
- ``int8-dynamic`` — the fp32 graph, smoothed (``export.smooth``, strength chosen on
  validation), through ONNX Runtime's dynamic quantizer (per-channel int8 weights,
  activations quantized at run time; a fused encoder's attention becomes ``QAttention``);
  with ``max_drop_pp`` the most sensitive layers stay float until the validation score is
  within that budget (``export.int8.int8_dynamic``);
- ``nbits`` — a weight-only 4/8-bit model (``WeightOnly``, or a packed file) with its own
  codes in ``MatMulNBits`` (``export.nbits``);
- ``auto`` — ``nbits`` for a weight-only quantized model, ``fp32`` for any other.

``out`` ending in ``.netpress`` writes the form as a ``.netpress`` file instead
(``encode.artifact.graph_artifact_bytes``: the same graph, its int8 tables entropy-coded,
run by ``netpress run`` / ``netpress.runtime``, a text encoder's batches in groups of
similar length); it is checked and timed as that runtime runs it (a 4/8-bit file is held
to the float tolerance in exact mode, timed in the runtime's default int8-activation mode,
and that mode's comparison is reported as ``check.fast``).

Every export is checked: the graph's outputs on the task's test part against the torch
model's (the maximum error relative to the largest output, and the task's comparison —
agreement or cosine / recall@10). Float forms must agree to ``FLOAT_REL_TOL``; an int8 form
is reported, not held to it. Speed is examples per second over held-out test examples at
the batch sizes asked (``profile.throughput``), against the same model in torch eager, in
the same run; a form slower than torch is said so in ``warnings``. With
``OMP_WAIT_POLICY=PASSIVE`` (what netpress's make targets set for training on shared cores)
torch's OpenMP threads sleep between operations: all-MiniLM-L6-v2 in torch eager then runs
at 20 sentences/s at batch 1 instead of 86-91, so ``warnings`` says the speed-ups read high.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, ModelError, NetpressError
from ..io import atomic_write, file_size
from ..profile.throughput import throughput
from ..profile.timing import passive_openmp_warning, torch_runner
from ..techniques.quantize.modules import baked_copy
from .int8 import int8_dynamic
from .nbits import export_nbits, nbits_layers
from .onnx import export_onnx
from .runtimes import ort_runner

FORMS = ("auto", "fp32", "int8-dynamic", "nbits")
# float graphs sum in another order than torch (fused kernels, MLAS blocks)
FLOAT_REL_TOL = 1e-3


def runtime_runner(source: Path | bytes, threads: int, exact: bool = False,
                   group_lengths: bool | None = None):
    """A runner (torch in, torch out) over ``netpress.runtime`` for a ``.netpress`` file
    (its path or its bytes)."""
    import numpy as np

    from ..runtime.model import Model

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    model = Model(data, threads, exact=exact, group_lengths=group_lengths)
    names = model.input_names

    def run(x):
        feeds = {n: x[n].numpy() for n in names} if isinstance(x, dict) else x.numpy()
        return torch.from_numpy(np.ascontiguousarray(model.run(feeds)))

    return run


def resolve_form(model: nn.Module, form: str) -> str:
    """The form ``auto`` means for ``model``; an impossible choice is a ConfigError.

    Example:
        >>> resolve_form(nn.Linear(2, 2), "auto")
        'fp32'
    """
    if form not in FORMS:
        raise ConfigError(f"unknown form {form!r}; use one of {', '.join(FORMS)}")
    if type(model).__name__ == "GraphModule":  # a .netpress file whose graph is its model
        raise ConfigError("this .netpress file holds its model as a graph (a fused or "
                          "weight-only quantized form, or a model netpress does not build): it "
                          "is already deployable — run it with `netpress run` or "
                          "netpress.runtime; to export another form, use the weights in its "
                          "run folder (--model/--weights)")
    quantized = bool(nbits_layers(model))
    if form == "auto":
        return "nbits" if quantized else "fp32"
    if form == "nbits" and not quantized:
        raise ConfigError("--form nbits needs a weight-only 4- or 8-bit model; quantize it "
                          "with `netpress quantize --scheme w4-gptq` and export the "
                          "model.safetensors it writes, or use --form fp32 / int8-dynamic")
    if form != "nbits" and quantized:
        raise ConfigError(f"the model carries weight-only quantized layers; --form {form} "
                          "would export their float values: use --form nbits (or auto)")
    return form


def _build(model: nn.Module, task, form: str, tmp: Path, fuse: bool, info: dict,
           max_drop_pp: float | None, threads: int, say) -> Path:
    """Write the form into the folder ``tmp``; returns the ONNX file."""
    example = task.example_inputs(1, "test")
    path = tmp / "model.onnx"
    if form == "nbits":
        return export_nbits(model, example, path, info=info, fuse=fuse)
    export_onnx(model, example, path, fuse=fuse, info=info)
    if form != "int8-dynamic":
        return path
    q = tmp / "int8.onnx"
    info["int8"] = int8_dynamic(path, q, task, max_drop_pp, threads, say=say)
    return q


def export_model(
    model: nn.Module,
    task,
    out: str | os.PathLike,
    form: str = "auto",
    fuse: bool = True,
    threads: int = 2,
    batch_sizes: tuple[int, ...] = (1, 32),
    passes: int = 3,
    limit: int | None = 256,
    max_drop_pp: float | None = None,
    say: Callable[[str], None] = lambda s: None,
    spec: str = "?",
) -> dict:
    """Export ``model`` to ``out`` as ``form``, check it on ``task``'s test part and time
    it against the model in torch eager. Returns the record (see the module docstring).

    Example:
        >>> rec = export_model(encoder, task, "enc.onnx", form="int8-dynamic")  # doctest: +SKIP
        >>> rec["throughput"]["onnxruntime"]["b1"]["vs_baseline"]  # doctest: +SKIP
        2.1
    """
    form = resolve_form(model, form)
    if max_drop_pp is not None and form != "int8-dynamic":
        raise ConfigError("--max-drop-pp chooses which layers int8-dynamic keeps float; "
                          "use it with --form int8-dynamic")
    if any(b < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be at least 1, got {list(batch_sizes)}")
    model = model.eval()
    out = Path(out)
    info: dict = {}
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="netpress-export-") as d:
        # built, checked and timed in a temporary folder; OUT is written only if it passes
        path = _build(model, task, form, Path(d), fuse, info, max_drop_pp, threads, say)
        artifact = out.suffix.lower() == ".netpress"
        if artifact:
            import onnx

            from ..encode.artifact import graph_artifact_bytes

            data = graph_artifact_bytes(onnx.load(str(path)), spec)
            path = Path(d) / "model.netpress"
            path.write_bytes(data)
        try:
            run = runtime_runner(path, threads) if artifact else ort_runner(path, threads)
            # a .netpress file runs 4/8-bit layers with int8 activations by default (timed
            # so); it is held to the float tolerance in exact mode, and both are reported
            check_run = runtime_runner(path, threads, exact=True) \
                if artifact and form == "nbits" else run
            got, targets = task.runner_outputs(check_run, "test")
            fast = None
            if check_run is not run:
                fast_out, _ = task.runner_outputs(run, "test")
        except NetpressError:
            raise
        except Exception as e:  # ONNX Runtime's errors are not OSErrors
            raise ModelError(f"ONNX Runtime cannot run the exported {form} graph "
                             f"({str(e).splitlines()[0]}); export with --no-fuse") from e
        ref, _ = task.predict(model, "test")
        if check_run is not run:
            fast = {"max_rel_error": task.output_error(fast_out, ref),
                    **task.compare_outputs(fast_out, ref)}
        if got.shape != ref.shape:
            raise ModelError(f"the exported graph gives outputs of shape {tuple(got.shape)}, "
                             f"the model {tuple(ref.shape)}; export with --no-fuse")
        rel = task.output_error(got, ref)
        within = rel <= FLOAT_REL_TOL
        if form != "int8-dynamic" and not within:
            raise ModelError(f"the exported {form} graph differs from the torch model (max "
                             f"relative error {rel:.1e} > {FLOAT_REL_TOL:.0e}); export with "
                             "--no-fuse, or report the model")
        # a weight-only model is timed as deployed in torch: float weights rebuilt once
        # (its quantizer parametrization would re-quantize every weight on every call)
        base = baked_copy(model) if form == "nbits" else model
        speed = throughput({"torch": torch_runner(base), "onnxruntime": run},
                           task.part("test")[0], batch_sizes, passes=passes, limit=limit)
        atomic_write(out, lambda p: shutil.copyfile(path, p))
    passive = passive_openmp_warning()
    warnings = [passive] if passive else []
    warnings += [f"the {form} ONNX Runtime form is SLOWER than the model in torch eager at "
                f"batch {b[1:]} on this machine ({v['per_s']:.1f} vs "
                f"{speed['torch'][b]['per_s']:.1f} examples/s)"
                for b, v in speed["onnxruntime"].items() if v["vs_baseline"] < 1.0]
    return {
        "out": str(out), "form": form, "file_bytes": file_size(out), "threads": threads,
        "container": "netpress" if out.suffix.lower() == ".netpress" else "onnx",
        "fused": info.get("fused", {}), "fuse_note": info.get("fuse_note", ""),
        **({"int8": info["int8"]} if "int8" in info else {}),
        "check": {"part": "test", "examples": int(ref.shape[0]), "max_rel_error": rel,
                  "tolerance": FLOAT_REL_TOL, "within_tolerance": within,
                  **task.compare_outputs(got, ref),
                  "score": task.score_outputs(got, targets),
                  "torch_score": task.score_outputs(ref, targets),
                  **({"mode": "exact", "fast": fast} if fast else {})},
        "throughput": speed, "timed_examples": limit, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "warnings": warnings,
    }

"""``netpress run``: run a ``.netpress`` file in netpress's torch-free runtime."""

from __future__ import annotations

import statistics
import time

import numpy as np
import typer

from .. import ui
from ..errors import DataError
from ..io import write_bytes
from .common import JsonOpt, emit_json, start


def _read_input(spec: str, names: list[str]) -> tuple[str, np.ndarray]:
    name, _, path = spec.rpartition("=") if "=" in spec else (names[0] if names else "", "", spec)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read --input {path} as a .npy array ({e}); save one with "
                        "numpy.save") from e
    if not isinstance(arr, np.ndarray):
        raise DataError(f"--input {path} holds several arrays; give one .npy file per input")
    return name, arr


def _trial_inputs(model) -> dict[str, np.ndarray]:
    """Inputs for a quick try: ones for token inputs (length 8), zeros otherwise, each
    named dimension of size 1 (8 for a sequence)."""
    out = {}
    for name, v in model.inputs.items():
        shape = [d if isinstance(d, int) else (8 if d == "sequence" else 1) for d in v["shape"]]
        dtype = np.dtype(v["dtype"])
        out[name] = (np.ones(shape, dtype) if dtype.kind in "iu" else np.zeros(shape, dtype))
    return out


def register_commands(app: typer.Typer) -> None:
    """Add ``run`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    def run(
        artifact: str = typer.Argument(..., help="A .netpress file."),
        inputs: list[str] = typer.Option(None, "--input", "-i",
                                         help="An input as a .npy file: FILE for a one-input "
                                              "model, or NAME=FILE (repeat per input). Without "
                                              "it, a trial input of zeros (ones for tokens)."),
        out: str = typer.Option(None, "--out", "-o", help="Write the output as a .npy file."),
        threads: int = typer.Option(2, "--threads", help="ONNX Runtime intra-op threads."),
        repeat: int = typer.Option(5, "--repeat", help="Timed runs (the median is shown)."),
        exact: bool = typer.Option(False, "--exact",
                                   help="4/8-bit layers in float32 (the torch model's outputs) "
                                        "instead of ONNX Runtime's faster int8-activation kernels."),
        json_out: bool = JsonOpt,
    ):
        """Run an artifact with numpy and ONNX Runtime only (no torch, no model class)."""
        start(json_out)
        from ..runtime import load

        t0 = time.perf_counter()
        model = load(artifact, threads=threads, exact=exact)
        load_s = time.perf_counter() - t0
        if inputs:
            feed = dict(_read_input(s, model.input_names) for s in inputs)
        else:
            feed = _trial_inputs(model)
        y = model.run(feed)
        times = []
        for _ in range(max(1, repeat)):
            t = time.perf_counter()
            model.run(feed)
            times.append((time.perf_counter() - t) * 1e3)
        if out:
            import io

            buf = io.BytesIO()
            np.save(buf, y, allow_pickle=False)
            write_bytes(out, buf.getvalue())
        rec = {"artifact": artifact, "model": model.spec, "inputs": {
            k: list(v.shape) for k, v in model.feeds(feed).items()},
            "output_shape": list(y.shape), "output_dtype": str(y.dtype),
            "output_head": np.asarray(y).reshape(-1)[:8].tolist(),
            "load_seconds": load_s, "run_ms_p50": statistics.median(times), "threads": threads,
            "exact": exact,
            "trial_input": not inputs, **({"out": out} if out else {})}
        if y.ndim == 2 and y.shape[1] > 1:
            rec["argmax"] = np.argmax(y, axis=1)[:16].tolist()
        if json_out:
            emit_json(rec)
            return
        ui.out_console.print(
            f"{artifact} ({model.spec}): output {tuple(y.shape)} {y.dtype}, "
            f"{rec['run_ms_p50']:.2f} ms a run (median of {len(times)}, {threads} threads), "
            f"loaded in {load_s:.2f} s" + (" on a trial input" if not inputs else ""))
        ui.out_console.print(f"first values: {np.round(rec['output_head'], 4).tolist()}")

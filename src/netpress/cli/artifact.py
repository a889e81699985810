"""``netpress pack``, ``unpack`` and ``inspect``: the .netpress file from the command line."""

from __future__ import annotations

import typer

from .. import ui
from ..encode.artifact import decode_artifact, read_artifact, save_artifact, torch_state
from ..encode.inspect import inspect_bytes
from ..encode.report import han_table, streams_table
from ..errors import FormatError, NetpressError
from ..io import save_weights
from .common import JsonOpt, ModelOpt, WeightsOpt, emit_json, get_model, start

CoderOpt = typer.Option("ans", "--coder",
                        help="Entropy coder of the streams: ans, huffman, or auto (the smaller "
                             "per stream).")
IndexOpt = typer.Option("auto", "--index",
                        help="Sparse positions: auto (the smaller), relative or bitmap.")


def _summary(info: dict) -> dict:
    rows = [{k: v for k, v in r.items() if k != "streams"} for r in info["tensors"]]
    streams = [dict(s, tensor=r["name"]) for r in info["tensors"] for s in r.get("streams", [])]
    return {**{k: v for k, v in info.items() if k != "tensors"}, "tensors": rows,
            "streams": streams}


def register_commands(app: typer.Typer) -> None:
    """Add ``pack``, ``unpack`` and ``inspect`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    def pack(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        out: str = typer.Option(..., "--out", "-o", help="Where to write the .netpress file."),
        coder: str = CoderOpt,
        index: str = IndexOpt,
        json_out: bool = JsonOpt,
    ):
        """Store weights as a .netpress artifact (shared weights as codebooks + indices)."""
        start(json_out)
        if coder not in ("auto", "ans", "huffman") or index not in ("auto", "relative", "bitmap"):
            raise NetpressError("--coder must be ans, huffman or auto; --index auto, relative "
                                "or bitmap")
        net = get_model(model, weights)
        size = save_artifact(net, out, model, coder=coder, index=index)
        info = inspect_bytes(read_artifact(out))
        if json_out:
            emit_json({"out": out, "size_bytes": size, **_summary(info)})
            return
        ui.out_console.print(han_table(info))
        ui.out_console.print(f"wrote {out}: {size:,} bytes, {info['compression_ratio']:.2f}× "
                             "smaller than fp32 weights")

    @app.command()
    def unpack(
        artifact: str = typer.Argument(..., help="A .netpress file."),
        out: str = typer.Option(..., "--out", "-o", help="Where to write .safetensors."),
        json_out: bool = JsonOpt,
    ):
        """Decode an artifact into plain safetensors weights (loadable with --weights)."""
        start(json_out)
        header, tensors = decode_artifact(read_artifact(artifact))
        spec = str(header["model"].get("spec"))
        state = torch_state(header, tensors)
        if state is None:
            raise FormatError(f"{artifact} holds a graph whose tensors are not a torch state "
                              "(a fused or weight-only quantized form): run it with `netpress "
                              "run`, or unpack the weights netpress compress wrote beside it")
        save_weights(state, out, {"model": spec, "source": "netpress unpack"})
        rec = {"artifact": artifact, "out": out, "model": spec, "tensors": len(state),
               "params": sum(t.numel() for t in state.values())}
        if json_out:
            emit_json(rec)
            return
        ui.out_console.print(f"wrote {out}: {rec['tensors']} tensors of {spec} "
                             f"({rec['params']:,} values); use --model {spec} --weights {out}")

    @app.command()
    def inspect(
        artifact: str = typer.Argument(..., help="A .netpress file."),
        json_out: bool = JsonOpt,
    ):
        """What each part of an artifact costs, per layer and per coded stream."""
        start(json_out)
        info = inspect_bytes(read_artifact(artifact))
        if json_out:
            emit_json({"artifact": artifact, **_summary(info)})
            return
        ui.out_console.print(han_table(info))
        ui.out_console.print(streams_table(info))
        m = info["metrics"]
        if m:
            ui.out_console.print("metrics stored at compression: " + ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()))

"""``netpress export``: any model netpress wrote to one ONNX file, checked and timed."""

from __future__ import annotations

import typer
from rich.table import Table

from .. import ui
from ..errors import ConfigError
from ..io import write_json
from .common import (
    DataDirOpt,
    DataOpt,
    JsonOpt,
    SeedOpt,
    ThreadsOpt,
    WeightsOpt,
    emit_json,
    get_task,
    model_from_args,
    start,
    text_options,
)
from .common import ModelOpt as _ModelOpt


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--batch-sizes takes positive integers separated by commas, got {text!r}")
    return sizes


def export_table(rec: dict) -> Table:
    """Examples per second of the ONNX file and of the model in torch eager."""
    t = Table(title=f"{rec['out']} ({rec['form']}, {rec['file_bytes']:,} bytes, "
                    f"{rec['threads']} threads)", title_justify="left")
    for col in ("batch", "torch eager /s", "ONNX Runtime /s", "speed-up"):
        t.add_column(col, justify="right")
    for b, v in rec["throughput"]["onnxruntime"].items():
        t.add_row(b[1:], f"{rec['throughput']['torch'][b]['per_s']:.1f}", f"{v['per_s']:.1f}",
                  f"{v['vs_baseline']:.2f}×")
    return t


def register_commands(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""

    @app.command("export")
    @text_options
    def export_(
        artifact: str = typer.Argument(None, help="A .netpress artifact to export "
                                                  "(instead of --model/--weights)."),
        model: str = typer.Option(None, "--model", "-m", help=_ModelOpt.help),
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        out: str = typer.Option(..., "--out", "-o", help=(
            "Where to write the .onnx file (or a .netpress file: the same graph, its int8 "
            "tables entropy-coded, run by `netpress run`).")),
        form: str = typer.Option("auto", "--form", help=(
            "auto (MatMulNBits for a weight-only model, else fp32) | fp32 | int8-dynamic "
            "(ONNX Runtime's dynamic int8 on the graph) | nbits.")),
        fuse: bool = typer.Option(True, "--fuse/--no-fuse", help=(
            "Fuse a transformer encoder with ONNX Runtime's optimiser (attention, LayerNorm, "
            "GELU).")),
        max_drop_pp: float = typer.Option(None, "--max-drop-pp", help=(
            "int8-dynamic: keep the most sensitive layers float until the validation score "
            "is within this many points (pp) of the float graph's.")),
        batch_sizes: str = typer.Option("1,32", "--batch-sizes",
                                        help="Batch sizes to time (comma-separated)."),
        passes: int = typer.Option(3, "--passes", help="Timed passes over the examples."),
        examples: int = typer.Option(256, "--examples",
                                     help="Held-out test examples per timed pass."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Export to ONNX (fused, int8 or MatMulNBits), check it against torch, time both."""
        from ..export.deploy import export_model, resolve_form

        start(json_out)
        if passes < 1 or examples < 1:
            raise ConfigError("--passes and --examples must be at least 1")
        sizes = _batch_sizes(batch_sizes)
        net, spec = model_from_args(artifact, model, weights)
        resolve_form(net, form)  # a wrong --form fails before the data is read
        task = get_task(spec, net, data, data_dir, seed)
        ui.info(f"exporting {spec} as {form} to {out}")
        rec = export_model(net, task, out, form=form, fuse=fuse, threads=threads,
                           batch_sizes=sizes, passes=passes, limit=examples,
                           max_drop_pp=max_drop_pp, say=ui.info, spec=spec)
        rec.update(model=spec, data=task.name)
        write_json(f"{out}.json", rec)
        if json_out:
            emit_json(rec)
            return
        chk = rec["check"]
        fused = ", ".join(f"{v} {k}" for k, v in rec["fused"].items())
        ui.out_console.print(f"fused: {fused}" if fused else
                             f"not fused: {rec['fuse_note'] or 'not a transformer'}")
        extra = "; ".join(f"{k} {chk[k]:.4f}" for k in ("agreement", "cosine", "recall_at_10")
                          if isinstance(chk.get(k), float))
        ui.out_console.print(f"check on {chk['examples']} test examples: max relative error "
                             f"{chk['max_rel_error']:.1e}" + (f"; {extra}" if extra else ""))
        if rec.get("int8", {}).get("alpha") is not None:
            ui.out_console.print(f"activations smoothed (alpha {rec['int8']['alpha']}, chosen "
                                 "on validation)")
        if rec.get("int8", {}).get("kept_float"):
            i8 = rec["int8"]
            ui.out_console.print(f"kept float for the {i8['max_drop_pp']} pp budget: "
                                 f"{', '.join(i8['kept_float'])} (validation score "
                                 f"{i8['val_score']:.4f}, all int8 {i8['val_score_all_int8']:.4f})")
        ui.out_console.print(export_table(rec))
        for w in rec["warnings"]:
            ui.out_console.print(f"[bold yellow]warning:[/] {w}")
        ui.out_console.print(f"wrote {out} and {out}.json")

"""``netpress compress``: run a recipe, write the artifact, measure it against the baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import typer
from torch import nn

from .. import ui
from ..context import Context
from ..data.splits import Split
from ..distributed.hooks import CommHook
from ..encode.artifact import decode_artifact, model_from_artifact
from ..encode.inspect import inspect_bytes
from ..encode.report import han_table, streams_table
from ..errors import NetpressError
from ..io import write_bytes, write_json
from ..pipeline.recipe import load_recipe
from ..pipeline.run_files import fresh_run_dir, histograms_file, sensitivity_file
from ..pipeline.runner import run_recipe
from ..pipeline.serving_files import write_serving_files
from ..profile.record import measure
from ..profile.table import summary_table
from ..report.write import write_report
from ..tasks.base import Task
from .artifact import _summary
from .common import (
    INVOKED_ARGS,
    DataDirOpt,
    DataOpt,
    JsonOpt,
    ModelOpt,
    NprocOpt,
    SeedOpt,
    ThreadsOpt,
    WeightsOpt,
    emit_json,
    get_model,
    get_task,
    start,
    text_options,
)


def compress_and_measure(model: str, weights: str | None, split: Task | Split, recipe: str,
                         out: str | None = None, seed: int = 0, threads: int = 2,
                         run_dir: str | Path | None = None, resume: bool = False,
                         net: nn.Module | None = None, export: str | None = None,
                         max_drop_pp: float | None = None) -> tuple[dict, dict]:
    """Run ``recipe`` on the model in a run folder, reload the artifact and measure it
    against the baseline (fp32 weights, 4 bytes per parameter); also copy it to ``out``.
    Returns ``(record, inspect info)``; ``record["run_dir"]`` says where the files are.

    ``export`` (a form of ``netpress export``: fp32, int8-dynamic, nbits, auto) also
    writes the loaded artifact's model as ``model.onnx`` in the run folder, checked and
    timed against it in torch eager (``record["export"]``); ``max_drop_pp`` is the
    int8-dynamic validation budget.

    Example:
        >>> rec, info = compress_and_measure("lenet-300-100", "w.safetensors", split,
        ...                                  "recipes/deep-compression.yaml", "m.netpress")  # doctest: +SKIP
    """
    from ..distributed import ddp

    plan = load_recipe(recipe)
    net = net if net is not None else get_model(model, weights)
    folder = Path(run_dir) if run_dir else (fresh_run_dir(plan.name) if ddp.is_main() else None)
    if ddp.active() and not run_dir:  # under the user's torchrun: rank 0's new folder
        folder = Path(ddp.broadcast_bytes(str(folder).encode() if ddp.is_main() else None).decode())
    ui.info(f"run folder: {folder}")
    ctx = Context(split, seed=seed, threads=threads)
    meta = {"weights": str(weights), "recipe_file": str(recipe)}
    run = run_recipe(net, plan, ctx, model, progress=ui.info, run_dir=folder, resume=resume,
                     meta=meta)
    main, world = ddp.is_main(), ddp.world_size()
    ddp.shutdown()  # training is over: rank 0 measures alone, the others leave now
    if not main:
        return {}, {}
    if out:
        write_bytes(out, run.artifact)
    header, state = decode_artifact(run.artifact)
    loaded = model_from_artifact(header, state)
    task = ctx.task
    same = same_outputs(task.predict(loaded, "test")[0], task.predict(run.model, "test")[0])
    ui.info("measuring the loaded artifact against the baseline")
    params = sum(p.numel() for p in net.parameters())
    rec = measure(loaded, task, model, baseline=net, size_bytes=len(run.artifact),
                  baseline_size_bytes=4 * params, threads=threads)
    info = inspect_bytes(run.artifact)
    summary = _summary(info)
    rec.update({
        "artifact": str(out or folder / "model.netpress"), "run_dir": str(folder),
        "recipe": plan.to_dict(), "seconds": run.seconds, "resumed_from": run.resumed_from,
        "load_equals_compressed": same,
        "stages": [vars(s) for s in run.stages],
        "baseline_size_note": "fp32 weights: 4 bytes per parameter",
        "artifact_layers": summary["tensors"], "streams": summary["streams"],
        "header_bytes": info["header_bytes"], "padding_bytes": info["padding_bytes"],
        "coded_overhead": info["coded_overhead"],
    })
    if world > 1:
        rec["distributed"] = {"world_size": world, "hook": (
            plan.comm or CommHook()).to_dict(), "fine_tunes": [
            c for s in run.stages for c in (s.comm or [])]}
    if export:
        from ..export.deploy import export_model

        ui.info(f"exporting the compressed model to ONNX ({export})")
        try:
            rec["export"] = export_model(loaded, task, folder / "model.onnx", form=export,
                                         threads=threads, max_drop_pp=max_drop_pp, say=ui.info)
        except NetpressError as e:  # the run's records are kept; the export says why not
            rec["export"] = {"form": export, "error": str(e), "warnings": [
                f"--export {export} failed: {e}"]}
    write_json(folder / "record.json", rec)
    write_run_files(folder, net, loaded, ctx)
    ui.info("writing baseline.netpress and the drift reference for serving")
    rec["serving_files"] = write_serving_files(folder, net, model, run.artifact, task)
    write_json(folder / "record.json", rec)
    rec["report"] = {k: str(v) for k, v in write_report(folder).items()}
    return rec, info


def same_outputs(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-identical outputs; NaN equals NaN (a language model's predictions mark ignored
    positions with NaN).

    Example:
        >>> same_outputs(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]))
        True
    """
    nan_a, nan_b = a.isnan(), b.isnan()
    return bool(torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b]))


def write_run_files(folder: Path, baseline, compressed, ctx: Context) -> None:
    """sensitivity.json, histograms.json and behaviour.json of a run (sensitivity is kept
    when a resumed run already measured it; for text and large models the sweep is bounded,
    see ``run_files.sweep_plan``). Behaviour is the task's: per class, calibration, noise
    and FGSM for images; token dropout, swaps and embedding FGSM for text."""
    if not (folder / "sensitivity.json").is_file():
        ui.info("measuring per-layer pruning sensitivity of the baseline")
        write_json(folder / "sensitivity.json", sensitivity_file(baseline, ctx, progress=ui.info))
    write_json(folder / "histograms.json", histograms_file(baseline, compressed))
    ui.info("validating behaviour on test data: " + (
        "per class, calibration, noise, FGSM" if ctx.task.kind == "image-classification"
        else "token dropout, token swaps, FGSM on the embeddings"
        + (", per class" if ctx.task.classes else "")))
    write_json(folder / "behaviour.json", ctx.task.behaviour(compressed, baseline, seed=ctx.seed))


def print_report(rec: dict, info: dict) -> None:
    """Han's per-layer table, the stream statistics and the before/after summary.

    Example:
        >>> print_report(*compress_and_measure(...))  # doctest: +SKIP
    """
    ui.out_console.print(han_table(info, title=f"{rec['model']} — {rec['recipe']['name']}, "
                                               "per layer (Han et al. Tables 2–3)"))
    ui.out_console.print(streams_table(info))
    ui.out_console.print(summary_table(rec))
    same = rec["load_equals_compressed"]
    ui.out_console.print(
        f"wrote {rec['artifact']}: {rec['size_bytes']:,} bytes (run folder {rec['run_dir']}); "
        "the loaded artifact reproduces "
        f"the compressed model {'exactly' if same else 'NOT exactly (a bug: please report it)'};"
        f" recipe took {rec['seconds']:.0f} s")
    if rec.get("export", {}).get("error"):
        ui.out_console.print(f"[bold yellow]warning:[/] {rec['export']['warnings'][0]}")
    elif rec.get("export"):
        ex = rec["export"]
        speed = ", ".join(f"batch {b[1:]} {v['vs_baseline']:.2f}×"
                          for b, v in ex["throughput"]["onnxruntime"].items())
        ui.out_console.print(f"ONNX ({ex['form']}): {ex['out']}, {ex['file_bytes']:,} bytes; "
                             f"against the compressed model in torch eager: {speed}")
        for w in ex["warnings"]:
            ui.out_console.print(f"[bold yellow]warning:[/] {w}")
    for ft in rec.get("distributed", {}).get("fine_tunes", []):
        ui.out_console.print(
            f"{ft['description']} on {ft['world_size']} processes ({ft['hook']['hook']}): "
            f"{ft['bytes_per_step']:,.0f} bytes sent per step and rank, "
            f"{ft['bytes_per_step'] / ft['allreduce_bytes_per_step'] * 100:.1f}% of fp32 all-reduce")
    if rec.get("report"):
        ui.out_console.print(f"report: {rec['report']['html']} (gate input: {rec['report']['json']})")


def register_commands(app: typer.Typer) -> None:
    """Add ``compress`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    @text_options
    def compress(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        recipe: str = typer.Option(..., "--recipe", "-r", help="A recipe YAML file."),
        out: str = typer.Option(None, "--out", "-o",
                                help="Also write the .netpress file here (it is always in the run folder)."),
        run_dir: str = typer.Option(None, "--run-dir",
                                    help="Folder for checkpoints, metrics and the report "
                                         "(default: a new folder under .netpress/runs/)."),
        resume: bool = typer.Option(False, "--resume",
                                    help="Continue the run in --run-dir after its last complete stage."),
        export: str = typer.Option(None, "--export", help=(
            "Also write the compressed model as model.onnx in the run folder, checked and "
            "timed: fp32 | int8-dynamic | nbits | auto (see `netpress export`).")),
        max_drop_pp: float = typer.Option(None, "--max-drop-pp", help=(
            "With --export int8-dynamic: validation budget (pp) for the layers kept float.")),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        nproc: int = NprocOpt,
        json_out: bool = JsonOpt,
    ):
        """Run a recipe's stages, write the artifact and measure it against the baseline."""
        from ..distributed import ddp

        start(json_out)
        plan = load_recipe(recipe)  # fail on a bad recipe before loading data
        if resume and not run_dir:
            raise NetpressError("--resume needs --run-dir: the folder of the run to continue")
        if nproc > 1 and not ddp.init_from_env():
            from ..distributed.launch import run_torchrun, strip_nproc, with_option

            folder = str(run_dir or fresh_run_dir(plan.name))
            args = with_option(strip_nproc(INVOKED_ARGS or sys.argv[1:]), "--run-dir", folder)
            run_torchrun(args, nproc, resume_hint=(
                f"Finished stages are checkpointed in {folder}: run the same command with "
                f"--run-dir {folder} --resume to continue."))
            return
        if ddp.init_from_env() and not ddp.is_main():
            ui.set_quiet(True)
        if export is not None:
            from ..export.deploy import FORMS

            if export not in FORMS:
                raise NetpressError(f"--export must be one of {', '.join(FORMS)}, got {export!r}")
        if max_drop_pp is not None and export != "int8-dynamic":
            raise NetpressError("--max-drop-pp is the budget of --export int8-dynamic; add it")
        if max_drop_pp is not None and max_drop_pp < 0:
            raise NetpressError(f"--max-drop-pp must be 0 or more, got {max_drop_pp}")
        net = get_model(model, weights)
        split = get_task(model, net, data, data_dir, seed)
        try:
            rec, info = compress_and_measure(model, weights, split, recipe, out, seed, threads,
                                             run_dir, resume, net=net, export=export,
                                             max_drop_pp=max_drop_pp)
        finally:
            ddp.shutdown()
        if not rec:  # not rank 0
            return
        if json_out:
            emit_json(rec)
            return
        print_report(rec, info)

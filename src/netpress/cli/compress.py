"""``netpress compress``: run a recipe, write the artifact, measure it against the baseline."""

from __future__ import annotations

import copy

import torch
import typer

from .. import ui
from ..context import Context
from ..data.loaders import ArrayLoader
from ..data.splits import Split
from ..encode.artifact import decode_artifact, model_from_artifact
from ..encode.inspect import inspect_bytes
from ..encode.report import han_table, streams_table
from ..evaluate.metrics import predict
from ..io import write_bytes
from ..pipeline.recipe import load_recipe
from ..pipeline.runner import run_recipe
from ..profile.record import measure
from ..profile.table import summary_table
from .artifact import _summary
from .common import (
    DataDirOpt,
    DataOpt,
    JsonOpt,
    ModelOpt,
    SeedOpt,
    ThreadsOpt,
    WeightsOpt,
    emit_json,
    get_model,
    get_split,
    start,
)


def compress_and_measure(model: str, weights: str, split: Split, recipe: str, out: str,
                         seed: int = 0, threads: int = 2) -> tuple[dict, dict]:
    """Run ``recipe`` on the model, write ``out``, reload it and measure it against the
    baseline (fp32 weights, 4 bytes per parameter). Returns ``(record, inspect info)``.

    Example:
        >>> rec, info = compress_and_measure("lenet-300-100", "w.safetensors", split,
        ...                                  "recipes/deep-compression.yaml", "m.netpress")  # doctest: +SKIP
    """
    plan = load_recipe(recipe)
    net = get_model(model, weights)
    base = copy.deepcopy(net)
    ctx = Context(split, seed=seed, threads=threads)
    run = run_recipe(net, plan, ctx, model, progress=ui.info)
    write_bytes(out, run.artifact)
    header, state = decode_artifact(run.artifact)
    loaded = model_from_artifact(header, state)
    loader = ArrayLoader(*split.test, batch_size=1000)
    same = bool(torch.equal(predict(loaded, loader)[0], predict(run.model, loader)[0]))
    ui.info("measuring the loaded artifact against the baseline")
    params = sum(p.numel() for p in base.parameters())
    rec = measure(loaded, split, model, baseline=base, size_bytes=len(run.artifact),
                  baseline_size_bytes=4 * params, threads=threads)
    info = inspect_bytes(run.artifact)
    summary = _summary(info)
    rec.update({
        "artifact": out, "recipe": plan.to_dict(), "seconds": run.seconds,
        "load_equals_compressed": same,
        "stages": [vars(s) for s in run.stages],
        "baseline_size_note": "fp32 weights: 4 bytes per parameter",
        "artifact_layers": summary["tensors"], "streams": summary["streams"],
        "header_bytes": info["header_bytes"], "padding_bytes": info["padding_bytes"],
        "coded_overhead": info["coded_overhead"],
    })
    return rec, info


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
        f"wrote {rec['artifact']}: {rec['size_bytes']:,} bytes; the loaded artifact reproduces "
        f"the compressed model {'exactly' if same else 'NOT exactly (a bug: please report it)'};"
        f" recipe took {rec['seconds']:.0f} s")


def register_commands(app: typer.Typer) -> None:
    """Add ``compress`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    def compress(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        recipe: str = typer.Option(..., "--recipe", "-r", help="A recipe YAML file."),
        out: str = typer.Option(..., "--out", "-o", help="Where to write the .netpress file."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Run a recipe's stages, write the artifact and measure it against the baseline."""
        start(json_out)
        load_recipe(recipe)  # fail on a bad recipe before loading data
        split = get_split(data, data_dir, seed)
        rec, info = compress_and_measure(model, weights, split, recipe, out, seed, threads)
        if json_out:
            emit_json(rec)
            return
        print_report(rec, info)

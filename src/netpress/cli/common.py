"""Options and helpers shared by every command: model/data loading and output."""

from __future__ import annotations

import json

import typer

from .. import ui
from ..api import load_model
from ..data.loaders import load_split
from ..data.splits import Split
from ..errors import NetpressError
from ..io import json_safe

ModelOpt = typer.Option(..., "--model", "-m",
                        help="Zoo name (lenet-300-100, lenet5-caffe, lenet5, resnet-small) "
                             "or package.module:factory.")
WeightsOpt = typer.Option(None, "--weights", "-w", help="Weights as .safetensors.")
DataOpt = typer.Option("fashion-mnist", "--data", "-d",
                       help="fashion-mnist, digits, or package.module:function.")
DataDirOpt = typer.Option(None, "--data-dir",
                          help="Folder with the Fashion-MNIST IDX files "
                               "(default $NETPRESS_DATA_DIR or /usr/share/datasets/fashion-mnist).")
SeedOpt = typer.Option(0, "--seed", help="Seed for data order, initialisation and sampling.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout.")
ThreadsOpt = typer.Option(2, "--threads", help="Intra-op threads for training and timing.")


def get_split(data: str, data_dir: str | None, seed: int) -> Split:
    """Load the data set named on the command line."""
    ui.info(f"loading data: {data}")
    return load_split(data, data_dir=data_dir, seed=seed)


def get_model(spec: str, weights: str | None, need_weights: bool = True):
    """Build the model named on the command line and load its weights."""
    if need_weights and weights is None:
        raise NetpressError(
            f"--weights is required for {spec}; train weights first with "
            f"`netpress train --model {spec} --out model.safetensors`"
        )
    return load_model(spec, weights)


def emit_json(obj: dict) -> None:
    """Print ``obj`` as one line of strict JSON on stdout."""
    print(json.dumps(json_safe(obj), allow_nan=False, sort_keys=False))


def start(json_out: bool) -> None:
    """Per-command setup: progress bars off under --json."""
    ui.set_quiet(json_out)

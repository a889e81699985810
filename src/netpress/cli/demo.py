"""``netpress demo``: the main job end to end on a real model and real data."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import api, ui
from ..errors import NetpressError
from ..io import load_weights
from ..profile.table import layer_table, summary_table
from ..zoo import ZOO
from .common import DataDirOpt, get_split


def cached_baseline(spec: str, split, seed: int, cache: Path) -> Path:
    """Train ``spec`` once per (data, seed, epochs) and keep the weights in ``cache``."""
    epochs = ZOO[spec].epochs
    path = cache / f"{spec}-{split.name}-s{seed}-e{epochs}.safetensors"
    if path.is_file():
        try:
            load_weights(path)
            ui.info(f"reusing cached baseline {path}")
            return path
        except NetpressError:
            ui.info(f"cached baseline {path} is unreadable; training again")
    ui.info(f"training baseline {spec} for {epochs} epochs (cached in {path})")
    api.train(spec, split, epochs=epochs, seed=seed, out=path)
    return path


def register_commands(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command()
    def demo(
        model: str = typer.Option("lenet-300-100", "--model", "-m"),
        data_dir: str = DataDirOpt,
        seed: int = typer.Option(0, "--seed"),
        cache: Path = typer.Option(Path(".netpress/cache"), "--cache",
                                   help="Where trained baselines are kept between runs."),
        recipe: str = typer.Option("recipes/deep-compression.yaml", "--recipe",
                                   help="Recipe run on the baseline at the end ('' skips it)."),
    ):
        """Train (or reuse) a baseline on Fashion-MNIST, profile and evaluate it."""
        if model not in ZOO:
            raise NetpressError(f"demo runs zoo models only; choose one of {', '.join(ZOO)}")
        split = get_split("fashion-mnist", data_dir, seed)
        weights = cached_baseline(model, split, seed, cache)
        net = api.load_model(model, weights)
        rec = api.profile(net, split, name=model, progress=ui.info)
        ui.out_console.print(layer_table(rec))
        ui.out_console.print(summary_table(rec))
        res = api.evaluate(net, split)
        worst = min(range(len(res.per_class)), key=lambda i: res.per_class[i])
        ui.out_console.print(
            f"test top-1 {res.accuracy * 100:.2f}%, top-5 {res.top5 * 100:.2f}%; weakest class "
            f"{split.class_names[worst]!r} at {res.per_class[worst] * 100:.2f}%"
        )
        if recipe:
            from .compress import compress_and_measure, print_report

            ui.info(f"compressing with {recipe}")
            out = cache / f"{model}-{Path(recipe).stem}.netpress"
            print_report(*compress_and_measure(model, str(weights), split, recipe, str(out),
                                               seed))

"""``netpress train``, ``profile`` and ``eval``."""

from __future__ import annotations

import hashlib

import typer
from rich.table import Table

from .. import api, ui
from ..errors import NetpressError
from ..profile.table import layer_table, summary_table
from ..version import __version__
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
    get_task,
    start,
    text_options,
)


def register_commands(app: typer.Typer) -> None:
    """Add the foundation commands to ``app``."""

    @app.command()
    def train(
        model: str = ModelOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        epochs: int = typer.Option(None, "--epochs", help="Epochs (default: the zoo's)."),
        lr: float = typer.Option(None, "--lr", help="Adam learning rate (default: the zoo's)."),
        batch_size: int = typer.Option(128, "--batch-size"),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        out: str = typer.Option(..., "--out", "-o", help="Where to write .safetensors."),
        json_out: bool = JsonOpt,
    ):
        """Train a model from scratch; same seed, same bytes."""
        start(json_out)
        split = get_split(data, data_dir, seed)
        net, result = api.train(model, split, epochs=epochs, seed=seed, lr=lr,
                                batch_size=batch_size, out=out, threads=threads)
        test = api.evaluate(net, split)
        digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
        rec = {"model": model, "data": split.name, "epochs": len(result.losses), "seed": seed,
               "final_loss": result.losses[-1] if result.losses else None,
               "val_accuracy": result.val_accuracy[-1] if result.val_accuracy else None,
               "accuracy": test.accuracy, "out": out, "sha256": digest, "threads": threads}
        if json_out:
            emit_json(rec)
            return
        t = Table(title=f"trained {model} on {split.name}", title_justify="left")
        t.add_column("figure")
        t.add_column("value", justify="right")
        for k in ("epochs", "final_loss", "val_accuracy", "accuracy", "out", "sha256"):
            v = rec[k]
            t.add_row("test_accuracy" if k == "accuracy" else k,
                      f"{v:.4f}" if isinstance(v, float) else str(v))
        ui.out_console.print(t)

    @app.command()
    @text_options
    def profile(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        batch_n: int = typer.Option(256, "--batch-n", help="The large batch size timed."),
        json_out: bool = JsonOpt,
    ):
        """Per-layer counts and measured size, accuracy, latency and memory."""
        start(json_out)
        net = get_model(model, weights, need_weights=False)
        split = get_task(model, net, data, data_dir, seed)
        if weights is None and not model.startswith("hf:"):
            ui.info("no --weights given: profiling untrained weights (accuracy is chance)")
        rec = api.profile(net, split, name=model, threads=threads, batch_n=batch_n,
                          progress=ui.info)
        if json_out:
            emit_json(rec)
            return
        ui.out_console.print(layer_table(rec))
        ui.out_console.print(summary_table(rec))

    @app.command("eval")
    @text_options
    def eval_(
        artifact: str = typer.Argument(None, help="A .netpress artifact to evaluate "
                                                  "(instead of --model/--weights)."),
        model: str = typer.Option(None, "--model", "-m", help=ModelOpt.help),
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        reference: str = typer.Option(None, "--reference",
                                      help="Weights of a reference model (same --model) to "
                                           "compare against: agreement and KL."),
        seed: int = SeedOpt,
        json_out: bool = JsonOpt,
    ):
        """Accuracy (top-1, top-5, per class) on test data, and agreement with a reference."""
        start(json_out)
        if artifact is not None:
            from ..encode.artifact import load_artifact

            net, header = load_artifact(artifact)
            model = model or str(header["model"].get("spec"))
        elif model is None:
            raise NetpressError("give an ARTIFACT (a .netpress file) or --model and --weights")
        else:
            net = get_model(model, weights)
        ref = get_model(model, reference) if reference else None
        if ref is None and model.startswith("hf:") and weights:
            ref = get_model(model, None)  # the folder's own weights are the reference
        split = get_task(model, ref if ref is not None else net, data, data_dir, seed)
        res = api.evaluate(net, split, reference=ref)
        ref_acc = api.evaluate(ref, split).accuracy if ref is not None else None
        rec = {"model": model, "data": split.name, **split.describe(), **res.as_dict(),
               **({"artifact": artifact} if artifact is not None else {}),
               "baseline_accuracy": ref_acc,
               "accuracy_drop_pp": None if ref_acc is None else (ref_acc - res.accuracy) * 100,
               "netpress_version": __version__}
        if json_out:
            emit_json(rec)
            return
        t = Table(title=f"{model} on {split.name} test ({res.n} examples)", title_justify="left")
        t.add_column("figure")
        t.add_column("value", justify="right")
        if not split.classes:
            for k, v in res.as_dict().items():
                if isinstance(v, float):
                    t.add_row(k, f"{v:.4f}")
            if ref_acc is not None:
                t.add_row(f"reference {split.score_name}", f"{ref_acc:.4f}")
            ui.out_console.print(t)
            return
        t.add_row("top-1 accuracy", f"{res.accuracy * 100:.2f}%")
        t.add_row("top-5 accuracy", f"{res.top5 * 100:.2f}%")
        for name, acc in zip(split.class_names, res.per_class, strict=True):
            t.add_row(f"  class {name}", f"{acc * 100:.2f}%")
        if ref is not None:
            t.add_row("reference top-1", f"{ref_acc * 100:.2f}%")
            t.add_row("top-1 agreement", f"{res.agreement * 100:.2f}%")
            t.add_row("mean KL(ref ‖ model)", f"{res.kl:.5f} nats")
        ui.out_console.print(t)

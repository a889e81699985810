"""``netpress train``, ``profile`` and ``eval``."""

from __future__ import annotations

import hashlib
import os

import typer
from rich.table import Table

from .. import api, ui
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
    folder_is_reference,
    get_model,
    get_split,
    get_task,
    model_from_args,
    start,
    text_options,
)


def _train_text(model: str, data: str, data_dir: str | None, epochs: int | None, lr: float | None,
                batch_size: int | None, seed: int, threads: int, out: str, json_out: bool) -> None:
    """``netpress train`` for an ``hf:`` folder: the task from the folder's own model (or
    --task), fine-tuned, saved with its head, evaluated on test."""
    import time

    base = api.load_model(model)  # the folder as it is: what the text is tokenised for
    task = get_task(model, base, data, data_dir, seed)
    del base
    t0 = time.perf_counter()
    net, result = api.train(model, task, epochs=epochs, seed=seed, lr=lr, batch_size=batch_size,
                            out=out, threads=threads)
    seconds = time.perf_counter() - t0
    test = task.evaluate(net, "test").as_dict()
    digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
    metrics = {k: v for k, v in test.items() if isinstance(v, float)}
    rec = {"model": model, **task.describe(), "epochs": len(result.losses), "seed": seed,
           "num_labels": task.num_classes if task.classes else None,
           "train_examples": task.num_examples("train"), "test_examples": task.num_examples("test"),
           "final_loss": result.losses[-1] if result.losses else None,
           "val_accuracy": result.val_accuracy[-1] if result.val_accuracy else None,
           "val_scores": result.val_accuracy, "accuracy": test["score"], "metrics": metrics,
           "out": out, "size_bytes": os.path.getsize(out), "sha256": digest,
           "seconds": seconds, "threads": threads, "netpress_version": __version__}
    if json_out:
        emit_json(rec)
        return
    name = task.score_name
    t = Table(title=f"trained {model} ({task.kind}) on {task.name}", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [("epochs", str(rec["epochs"])), ("final train loss", f"{rec['final_loss']:.4f}"),
            (f"val {name}", f"{rec['val_accuracy']:.4f}"), (f"test {name}", f"{test['score']:.4f}")]
    rows += [(f"test {k}", f"{v:.4f}") for k, v in metrics.items() if k not in ("score", name)]
    rows += [("seconds", f"{seconds:.0f}"), ("out", out), ("sha256", digest)]
    for row in rows:
        t.add_row(*row)
    ui.out_console.print(t)


def register_commands(app: typer.Typer) -> None:
    """Add the foundation commands to ``app``."""

    @app.command()
    @text_options
    def train(
        model: str = ModelOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        epochs: int = typer.Option(None, "--epochs", help="Epochs (default: the zoo's; 3 for "
                                                          "hf: models)."),
        lr: float = typer.Option(None, "--lr", help="Adam learning rate (default: the zoo's; "
                                                    "1e-4 for text classification, 5e-4 for "
                                                    "causal LMs)."),
        batch_size: int = typer.Option(None, "--batch-size",
                                       help="Batch size (default 128; 32 for hf: models)."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        out: str = typer.Option(..., "--out", "-o", help="Where to write .safetensors."),
        json_out: bool = JsonOpt,
    ):
        """Train a zoo model from scratch, or fine-tune an hf: model on text (a fresh
        classification head for an encoder, next tokens for a causal LM); same seed, same bytes."""
        start(json_out)
        if model.startswith("hf:"):
            _train_text(model, data, data_dir, epochs, lr, batch_size, seed, threads, out, json_out)
            return
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

    @app.command("init-lm")
    def init_lm(
        out: str = typer.Option(..., "--out", "-o", help="New folder for the model."),
        tokenizer_from: str = typer.Option(..., "--tokenizer-from",
                                           help="A local model folder whose tokenizer to copy "
                                                "(e.g. all-MiniLM-L6-v2's)."),
        layers: int = typer.Option(2, "--layers", help="Transformer blocks."),
        hidden: int = typer.Option(128, "--hidden", help="Width of the blocks."),
        heads: int = typer.Option(4, "--heads", help="Attention heads per block."),
        positions: int = typer.Option(128, "--positions", help="Tokens of context."),
        seed: int = SeedOpt,
    ):
        """Create a small GPT-2 causal LM with random weights and a copied tokenizer, offline;
        train it with `netpress train --model hf:OUT --data text:fortunes`."""
        start(False)
        from ..zoo.hf_make import make_tiny_causal_lm

        path = make_tiny_causal_lm(out, tokenizer_from, layers=layers, hidden=hidden, heads=heads,
                                   positions=positions, seed=seed)
        net = api.load_model(f"hf:{path}")
        params = sum(p.numel() for p in net.parameters())
        ui.out_console.print(f"wrote {path}: GPT-2, {layers} layers × {hidden} wide, {heads} heads, "
                             f"{positions} positions, vocabulary {net.hf_info.vocab_size:,}, "
                             f"{params:,} parameters (embedding tied with the output layer)")

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
        net, model = model_from_args(artifact, model, weights)
        ref = get_model(model, reference) if reference else None
        if ref is None and model.startswith("hf:") and weights and folder_is_reference(weights):
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
                if isinstance(v, float) and k != "score":  # the score is listed by its name
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

"""``netpress gate`` (budgets on a report, for CI) and ``netpress validate`` (behaviour
of a compressed artifact against its baseline)."""

from __future__ import annotations

import torch
import typer

from .. import ui
from ..errors import ConfigError
from .common import (
    DataDirOpt,
    DataOpt,
    JsonOpt,
    ModelOpt,
    SeedOpt,
    ThreadsOpt,
    emit_json,
    get_model,
    get_task,
    start,
    text_options,
)


def _levels(values: list[float] | None, default: tuple[float, ...], flag: str) -> tuple[float, ...]:
    if not values:
        return default
    for v in values:
        if not v >= 0:
            raise ConfigError(f"{flag} must be >= 0, got {v}")
    return tuple(values)


def register_commands(app: typer.Typer) -> None:
    """Add ``gate`` and ``validate`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    def gate(
        report: str = typer.Argument(..., help="A report.json (or the run folder holding one)."),
        max_acc_drop: float = typer.Option(None, "--max-acc-drop",
                                           help="Largest allowed accuracy drop, percentage points."),
        min_ratio: float = typer.Option(None, "--min-ratio",
                                        help="Smallest allowed compression ratio (baseline bytes "
                                             "/ artifact bytes)."),
        max_latency_ms: float = typer.Option(None, "--max-latency-ms",
                                             help="Largest allowed batch-1 median latency, ms."),
        max_class_drop: float = typer.Option(None, "--max-class-drop",
                                             help="Largest allowed per-class accuracy drop, "
                                                  "percentage points."),
        json_out: bool = JsonOpt,
    ):
        """Check a report against budgets: exit 0 if all hold, 1 if one fails, 2 on bad input."""
        from ..evaluate.gate import check_budgets, load_report, verdict

        start(json_out)
        checks = check_budgets(load_report(report), max_acc_drop=max_acc_drop, min_ratio=min_ratio,
                               max_latency_ms=max_latency_ms, max_class_drop=max_class_drop)
        passed = all(c.passed for c in checks)
        if json_out:
            emit_json({"report": report, "passed": passed,
                       "checks": [c.as_dict() for c in checks]})
        else:
            for c in checks:
                style = "green" if c.passed else "bold red"
                ui.out_console.print(f"[{style}]{c.text}[/]", highlight=False)
            ui.out_console.print(verdict(checks), style="green" if passed else "bold red",
                                 highlight=False)
        if not passed:
            raise typer.Exit(1)

    @app.command()
    @text_options
    def validate(
        model: str = ModelOpt,
        weights: str = typer.Option(None, "--weights", "-w",
                                    help="Baseline (uncompressed) weights as .safetensors "
                                         "(optional for an hf: folder: its own weights)."),
        artifact: str = typer.Option(..., "--artifact", "-a", help="The compressed .netpress file."),
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        seed: int = SeedOpt,
        noise: list[float] = typer.Option(None, "--noise",
                                          help="Images: Gaussian noise level σ as a fraction of the "
                                               "input range; repeat for several (default 0.1 and 0.2)."),
        eps: list[float] = typer.Option(None, "--eps",
                                        help="FGSM step ε as a fraction of the input range (images) "
                                             "or of the embeddings' RMS (text); repeat for several "
                                             "(default 0.02 and 0.05)."),
        threads: int = ThreadsOpt,
        out: str = typer.Option(None, "--out", "-o", help="Also write the JSON here (atomic)."),
        json_out: bool = JsonOpt,
    ):
        """Behaviour beyond the score on test data, artifact against baseline: per-class drop,
        ECE, noise and FGSM robustness for images; token dropout, token swaps and FGSM on the
        embeddings for text; agreement and KL."""
        from ..encode.artifact import load_artifact
        from ..evaluate.behaviour_table import behaviour_table, per_class_table
        from ..io import write_json

        start(json_out)
        noise_levels = _levels(noise, (0.1, 0.2), "--noise")
        eps_levels = _levels(eps, (0.02, 0.05), "--eps")
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        text = model.startswith("hf:")
        if text and noise:
            raise ConfigError("--noise perturbs image pixels; text models are checked with token "
                              "dropout and swaps instead; drop --noise")
        torch.set_num_threads(threads)
        base = get_model(model, weights, need_weights=not text)
        net, header = load_artifact(artifact)
        spec = str((header.get("model") or {}).get("spec"))
        if spec != model:
            ui.info(f"note: the artifact was built from {spec}, the baseline from {model}")
        task = get_task(model, base, data, data_dir, seed)
        ui.info(f"validating {artifact} against {weights or model} on "
                f"{task.num_examples('test'):,} test examples")
        kw = {"eps": eps_levels} if text else {"noise": noise_levels, "eps": eps_levels}
        rec = {"model": model, "artifact": artifact, "baseline_weights": weights, "data": task.name,
               "task": task.kind, "threads": threads,
               **task.behaviour(net, base, seed=seed, **kw)}
        if out is not None:
            write_json(out, rec)
        if json_out:
            emit_json(rec)
            return
        ui.out_console.print(behaviour_table(rec))
        if rec.get("per_class"):
            ui.out_console.print(per_class_table(rec))
        if out is not None:
            ui.out_console.print(f"wrote {out}")

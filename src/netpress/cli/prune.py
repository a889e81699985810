"""``netpress prune`` and ``netpress sensitivity``."""

from __future__ import annotations

import copy

import typer
from rich.table import Table

from .. import ui
from ..context import Context
from ..errors import ConfigError
from ..io import write_json
from ..profile.table import summary_table
from ..recovery import RECOVERY, recover
from ..targets import Targets
from ..techniques.prune import (
    GradualPrune,
    IterativePrune,
    LayerSparsity,
    MagnitudePrune,
    NMSparsity,
    StructuredPrune,
    check_nm,
)
from ..techniques.prune.budget import prune_to_budget
from ..techniques.prune.report import pruned_record
from ..techniques.prune.sensitivity import (
    DEFAULT_SWEEP,
    plot_sensitivity,
    ratios_for_target,
    sensitivity_sweep,
)
from .common import (
    DataDirOpt,
    DataOpt,
    JsonOpt,
    ModelOpt,
    SeedOpt,
    ThreadsOpt,
    WeightsOpt,
    baseline_weights,
    emit_json,
    get_model,
    get_task,
    start,
    text_options,
)

METHODS = ("magnitude", "agp", "nm", "structured", "han")


def parse_overrides(items: list[str]) -> tuple[LayerSparsity, ...]:
    """``NAME=S`` strings (NAME may be ``re:…``) into overrides.

    Example:
        >>> parse_overrides(["fc1=0.5"])
        (LayerSparsity(name='fc1', sparsity=0.5),)
    """
    out = []
    for item in items:
        name, eq, value = item.rpartition("=")
        try:
            if not eq or not name:
                raise ValueError
            out.append(LayerSparsity(name, float(value)))
        except ValueError:
            raise ConfigError(f"--override {item!r}: write NAME=FRACTION, e.g. fc1=0.5") from None
    return tuple(out)


def build_config(method: str, sparsity: float | None, scope: str | None, n: int, m: int,
                 importance: str, steps: int, epochs: int | None, lr: float, quality: float,
                 overrides: tuple[LayerSparsity, ...], targets: Targets,
                 self_distill: float = 0.0, temperature: float = 4.0):
    """The technique config the command line asks for. ``epochs`` None means "recover until
    validation stops improving": AGP then runs its schedule with early stopping (the
    recovery settings of ``RECOVERY["prune"]``), the other methods leave the recovery to
    ``netpress.recovery.recover``."""
    if method not in METHODS:
        raise ConfigError(f"unknown --method {method!r}; use one of {', '.join(METHODS)}")
    scope = scope or ("layer" if method == "structured" else "global")
    if scope not in ("layer", "global"):
        raise ConfigError(f"--scope must be layer or global, got {scope!r}")
    if method in ("magnitude", "agp", "structured") and sparsity is None:
        raise ConfigError(f"--method {method} needs --sparsity (a fraction, e.g. 0.9) "
                          "or, without --method, --max-drop-pp")
    fixed = epochs or 0  # None: recovery by early stopping afterwards
    if method == "magnitude":
        return MagnitudePrune(sparsity, scope=scope, overrides=overrides,
                              finetune_epochs=fixed, lr=lr, targets=targets)
    if method == "agp":
        auto = RECOVERY["prune"]
        # the measured schedule (BENCHMARKS.md): ramp over the first 30 % of the cap
        return GradualPrune(sparsity=sparsity, epochs=max(1, auto.max_epochs if epochs is None else epochs),
                            end_fraction=0.3 if epochs is None else 0.75, scope=scope,
                            overrides=overrides, lr=lr, self_distill=self_distill,
                            temperature=temperature, targets=targets,
                            patience=auto.patience if epochs is None else 0)
    if method == "nm":
        return NMSparsity(n, m, finetune_epochs=fixed, lr=lr, targets=targets)
    if method == "han":
        return IterativePrune(quality=quality, iterations=steps,
                              epochs_per_iteration=max(1, (epochs or steps) // steps), lr=lr,
                              targets=targets)
    if importance not in ("l1", "l2", "bn_scale", "taylor"):
        raise ConfigError(f"--importance must be l1, l2, bn_scale or taylor, got {importance!r}")
    return StructuredPrune(ratio=sparsity, importance=importance, scope=scope, steps=steps,
                           epochs_between=fixed // steps if steps > 1 else 0,
                           finetune_epochs=fixed - (steps - 1) * (fixed // steps)
                           if steps > 1 else fixed,
                           lr=lr, self_distill=self_distill, overrides=overrides,
                           targets=targets)


def _prune_table(rec: dict) -> Table:
    t = Table(title="pruning", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("weights removed (targeted layers)", f"{rec['weight_sparsity'] * 100:.2f}%")
    t.add_row("dense file", f"{rec['dense_size_bytes']:,} B")
    t.add_row("sparse file (CSR values + indices)", f"{rec['sparse_size_bytes']:,} B")
    t.add_row("speed-up batch 1 (p50)", f"{rec['speedup_batch1']:.2f}×")
    t.add_row(f"speed-up batch {rec['latency_ms']['batch_n']} (p50)",
              f"{rec['speedup_batchN']:.2f}×")
    for name, c in rec.get("channels", {}).items():
        t.add_row(f"  {name} channels", f"{c} / {rec['baseline_channels'][name]}")
    if "nm_violations" in rec:
        t.add_row("N:M groups violating the pattern", str(rec["nm_violations"]))
    return t


def register_commands(app: typer.Typer) -> None:
    """Add ``prune`` and ``sensitivity`` to ``app``."""

    @app.command()
    @text_options
    def prune(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        method: str = typer.Option(None, "--method",
                                   help="magnitude, agp, nm, structured or han (default: agp, "
                                        "the gradual schedule, for --sparsity)."),
        sparsity: float = typer.Option(None, "--sparsity", "-s",
                                       help="Fraction of weights removed (structured: of "
                                            "channels/neurons)."),
        max_drop_pp: float = typer.Option(None, "--max-drop-pp",
                                          help="Instead of --sparsity: the largest validation "
                                               "accuracy drop (pp) allowed; netpress finds the "
                                               "highest sparsity within it."),
        scope: str = typer.Option(None, "--scope",
                                  help="layer or global ranking (default: global, but layer "
                                       "for structured)."),
        n: int = typer.Option(2, "--n", help="N of N:M (weights kept per group)."),
        m: int = typer.Option(4, "--m", help="M of N:M (group size)."),
        importance: str = typer.Option("l1", "--importance",
                                       help="Structured: l1, l2, bn_scale or taylor."),
        steps: int = typer.Option(1, "--steps",
                                  help="Structured/han: pruning steps (fine-tuning shared "
                                       "between them)."),
        quality: float = typer.Option(1.0, "--quality",
                                      help="han: threshold = quality × std of the layer."),
        finetune_epochs: int = typer.Option(None, "--finetune-epochs", "-e",
                                            help="Fixed fine-tuning epochs (default: recover "
                                                 "until validation stops improving, at most "
                                                 "40; 0 = none)."),
        lr: float = typer.Option(None, "--lr", help="Fine-tuning Adam learning rate "
                                                    "(default 1e-3)."),
        self_distill: float = typer.Option(None, "--self-distill",
                                           help="Weight (0..1) of a KL term towards the "
                                                "unpruned model while recovering (default "
                                                "0.7; han: not used)."),
        ignore: list[str] = typer.Option([], "--ignore",
                                         help="Layer names (or re:patterns) left unpruned."),
        override: list[str] = typer.Option([], "--override",
                                           help="NAME=FRACTION per-layer sparsity."),
        out: str = typer.Option(None, "--out", "-o",
                                help="Pruned weights (.safetensors); without it the files "
                                     "are measured in a temporary folder and not kept."),
        sparse_out: str = typer.Option(None, "--sparse-out",
                                       help="Also keep the sparse CSR file here."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Prune a trained model, recover, and measure it against the original: to a target
        (--sparsity) with the gradual schedule, or to an accuracy budget (--max-drop-pp)."""
        start(json_out)
        targets = Targets(ignore=tuple(ignore))
        auto = RECOVERY["prune"]
        settings = auto.with_(lr, finetune_epochs)
        if self_distill is not None:
            from dataclasses import replace

            settings = replace(settings, self_distill=self_distill)
        budget = max_drop_pp is not None
        if budget and (sparsity is not None or method not in (None, "magnitude", "agp")):
            raise ConfigError("give --sparsity (a target) or --max-drop-pp (a budget), not "
                              "both; the budget search prunes unstructured weights by magnitude")
        if not budget and sparsity is None and method is None:
            raise ConfigError("give --sparsity (e.g. 0.9) or --max-drop-pp (e.g. 0.3)")
        method = method or "agp"
        cfg = None if budget else build_config(
            method, sparsity, scope, n, m, importance, steps, finetune_epochs, settings.lr,
            quality, parse_overrides(override), targets, settings.self_distill,
            settings.temperature)
        weights = baseline_weights(model, weights, data, data_dir, seed)
        net = get_model(model, weights)
        original = copy.deepcopy(net)
        split = get_task(model, original, data, data_dir, seed)
        ctx = Context(split, seed=seed, threads=threads)
        extra: dict = {}
        if budget:
            ui.info(f"pruning {model} to the highest sparsity within {max_drop_pp} pp of "
                    "validation accuracy")
            step = RECOVERY["prune-step"]
            if lr is not None:
                step = step.with_(lr=lr)
            res = prune_to_budget(net, ctx, max_drop_pp, settings=step, scope=scope or "global",
                                  targets=targets, progress=ui.info)
            extra["budget"] = res.as_dict()
            method = "budget"
        else:
            ui.info(f"pruning {model} with {type(cfg).__name__}")
            from ..config import apply

            net = apply(net, cfg, ctx)
            if finetune_epochs is None and method in ("magnitude", "nm", "structured"):
                run = recover(net, ctx, settings, teacher=original, description="prune: recover")
                extra["recovery"] = {"epochs": len(run.losses), "best_epoch": run.best_epoch,
                                     "lr": settings.lr, "stopped": run.stopped}
        if isinstance(cfg, NMSparsity):
            extra["nm_violations"] = sum(check_nm(net, cfg.n, cfg.m, cfg.targets).values())
        rec = pruned_record(net, original, split, model, out=out, sparse_out=sparse_out,
                            structured=isinstance(cfg, StructuredPrune),
                            metadata={"model": model, "seed": str(seed),
                                      "config": type(cfg).__name__ if cfg else "budget"},
                            targets=targets, threads=threads, progress=ui.info)
        rec.update(extra, method=method, config=cfg.to_dict() if cfg else None,
                   training=ctx.history)
        if json_out:
            emit_json(rec)
            return
        ui.out_console.print(summary_table(rec))
        ui.out_console.print(_prune_table(rec))
        if budget:
            ui.out_console.print(f"budget {max_drop_pp} pp on validation: kept "
                                 f"{rec['budget']['chosen_sparsity'] * 100:.2f}% sparsity; on "
                                 f"test the drop is {rec['accuracy_drop_pp']:.2f} pp")
        ui.info(f"wrote {out}" if out else "not kept: give --out FILE to keep the weights")

    @app.command()
    @text_options
    def sensitivity(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        kind: str = typer.Option("unstructured", "--kind", help="unstructured or structured."),
        sparsities: str = typer.Option(",".join(f"{s:g}" for s in DEFAULT_SWEEP),
                                       "--sparsities", help="Comma-separated sweep."),
        target: float = typer.Option(None, "--target",
                                     help="Also derive per-layer ratios for this overall "
                                          "sparsity."),
        plot: str = typer.Option(None, "--plot", help="Write a PNG plot here."),
        out_json: str = typer.Option(None, "--out-json", help="Write the result JSON here."),
        ignore: list[str] = typer.Option([], "--ignore", help="Layers left out of the sweep."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Validation accuracy with each layer pruned alone, over a sweep of sparsities."""
        start(json_out)
        try:
            sweep = tuple(float(s) for s in sparsities.split(",") if s.strip())
        except ValueError:
            raise ConfigError(f"--sparsities {sparsities!r}: write numbers like 0,0.5,0.9") \
                from None
        if kind not in ("unstructured", "structured"):
            raise ConfigError(f"--kind must be unstructured or structured, got {kind!r}")
        net = get_model(model, weights)
        split = get_task(model, net, data, data_dir, seed)
        ctx = Context(split, seed=seed, threads=threads)
        res = sensitivity_sweep(net, ctx, sweep, kind=kind, targets=Targets(ignore=tuple(ignore)),
                                progress=ui.info)
        rec = {"model": model, "data": split.name, "split": "val", **res.as_dict()}
        if target is not None:
            rec["target"] = target
            rec["ratios"] = ratios_for_target(res, target)
        if plot:
            plot_sensitivity(res, plot, title=f"{model}: {kind} sensitivity ({split.name} val)")
            rec["plot"] = plot
        if out_json:
            write_json(out_json, rec)
        if json_out:
            emit_json(rec)
            return
        t = Table(title=f"{model} — {kind} sensitivity, {split.name} validation top-1 "
                        f"(unpruned {res.baseline_accuracy * 100:.2f}%)", title_justify="left")
        t.add_column("layer")
        t.add_column("size", justify="right")
        for s in res.sparsities:
            t.add_column(f"{s * 100:g}%", justify="right")
        if target is not None:
            t.add_column(f"ratio for {target:g}", justify="right")
        for name, accs in res.accuracy.items():
            row = [name, f"{res.sizes[name]:,}", *[f"{a * 100:.2f}" for a in accs]]
            if target is not None:
                row.append(f"{rec['ratios'][name]:.3f}")
            t.add_row(*row)
        ui.out_console.print(t)
        if target is not None:
            ui.info("use the ratios with: netpress prune --method magnitude --scope layer "
                    + " ".join(f"--override {k}={v:.4f}" for k, v in rec["ratios"].items()))


__all__ = ["register_commands", "parse_overrides", "build_config"]

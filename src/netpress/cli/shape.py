"""``netpress distill`` and ``netpress lowrank``: techniques that change a model's shape.

Both write the result as safetensors with its architecture edits in the metadata (so
``netpress eval/profile --model M --weights OUT`` reload it) and print the measurement
record against the original model, measured in the same run.
"""

from __future__ import annotations

import typer

from .. import api, ui
from ..context import Context
from ..errors import NetpressError
from ..io import file_size
from ..profile.table import layer_table, summary_table
from ..targets import Targets
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


def _pairs(values: list[str] | None) -> tuple[str, ...]:
    return tuple(values or ())


def _show(rec: dict, json_out: bool) -> None:
    if json_out:
        emit_json(rec)
        return
    ui.out_console.print(layer_table(rec))
    ui.out_console.print(summary_table(rec))


def register_commands(app: typer.Typer) -> None:
    """Add ``distill`` and ``lowrank`` to ``app``."""

    @app.command()
    @text_options
    def distill(
        teacher: str = typer.Option(..., "--teacher", help="Teacher model: zoo name or "
                                    "package.module:factory."),
        teacher_weights: str = typer.Option(None, "--teacher-weights",
                                            help="Teacher weights (.safetensors; optional for hf: folders)."),
        student: str = typer.Option(None, "--student", help="Student model (zoo name or "
                                    "package.module:factory); default: the teacher × --width."),
        width: float = typer.Option(0.5, "--width", help="Width multiplier of the student "
                                    "built from the teacher (0 < w ≤ 1)."),
        prune_ratio: float = typer.Option(0.0, "--prune-ratio", help="Student = the teacher "
                                          "structurally pruned by this fraction (keeps its "
                                          "weights)."),
        drop: list[str] = typer.Option(None, "--drop", help="Teacher block to leave out of the "
                                       "student (repeatable; shape-preserving blocks only)."),
        drop_count: int = typer.Option(0, "--drop-count", help="Transformers: drop this many "
                                       "layers, those whose removal costs least on validation."),
        temperature: float = typer.Option(4.0, "--temperature", "-T",
                                          help="Softmax temperature of the soft targets."),
        alpha: float = typer.Option(0.9, "--alpha", help="Weight of the teacher term "
                                    "(1 − alpha on the labels)."),
        hint: list[str] = typer.Option(None, "--hint", help="FitNets hint 'student_layer="
                                       "teacher_layer' (repeatable)."),
        attention: list[str] = typer.Option(None, "--attention", help="Attention transfer "
                                            "'student_layer=teacher_layer' (repeatable)."),
        epochs: int = typer.Option(None, "--epochs", help="Fixed training epochs of the student "
                                   "(default: until validation stops improving, at most 30)."),
        lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate (cosine schedule)."),
        max_drop_pp: float = typer.Option(None, "--max-drop-pp", help="Budget instead of "
                                          "--width: the narrowest student (width 0.75, 0.5, "
                                          "0.35, 0.25, 0.15, 0.1) whose val accuracy is "
                                          "within this many pp of the teacher's."),
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        out: str = typer.Option(None, "--out", "-o", help="Where to write the student "
                                "(.safetensors); without it the file is measured in a "
                                "temporary folder and not kept."),
        json_out: bool = JsonOpt,
    ):
        """Distil a teacher into a smaller student; print the student's record vs the teacher."""
        import dataclasses
        import tempfile
        from pathlib import Path

        from ..techniques.distill import Distill, build_student, distill_into
        from ..techniques.edits import save_edited

        start(json_out)
        if prune_ratio and width == 0.5:
            width = 1.0  # --width's default does not apply to a pruned student
        auto = epochs is None
        cfg = Distill(student=student or "", width=width, drop=_pairs(drop), prune_ratio=prune_ratio,
                      temperature=temperature, alpha=alpha, hints=_pairs(hint),
                      attention=_pairs(attention), epochs=30 if auto else epochs, lr=lr,
                      drop_count=drop_count, patience=3 if auto else 0)
        t = get_model(teacher, baseline_weights(teacher, teacher_weights, data, data_dir, seed))
        split = get_task(teacher, t, data, data_dir, seed)
        ctx = Context(split, seed=seed, threads=threads)
        extra: dict = {}
        if max_drop_pp is not None:
            from ..techniques.distill.budget import distill_to_budget

            if student or prune_ratio or not auto:
                raise NetpressError("--max-drop-pp chooses the width itself: leave out "
                                    "--student, --prune-ratio and --epochs")
            res = distill_to_budget(t, ctx, max_drop_pp, cfg, progress=ui.info)
            if res.student is None:
                raise NetpressError(f"no student down from width 0.75 kept validation within "
                                    f"{max_drop_pp} pp; allow a larger --max-drop-pp")
            s, extra["budget"] = res.student, res.as_dict()
            cfg, result = dataclasses.replace(cfg, width=res.width), None
        else:
            s = build_student(t, cfg, ctx.example_inputs(2), seed=seed, ctx=ctx)
            ui.info(f"student: {sum(p.numel() for p in s.parameters()):,} parameters; "
                    f"teacher: {sum(p.numel() for p in t.parameters()):,}")
            result = distill_into(s, t, cfg, ctx)
            extra["best_epoch"] = result.best_epoch
        tmp = tempfile.TemporaryDirectory(prefix="netpress-distill-") if out is None else None
        path = out or str(Path(tmp.name) / "student.safetensors")
        save_edited(s, path, student or teacher, {"teacher": teacher, "seed": str(seed),
                                                  "epochs": str(cfg.epochs)})
        size = file_size(path)
        if tmp is not None:
            tmp.cleanup()
        rec = api.profile(s, split, name=f"{student or teacher} (student)", baseline=t,
                          size_bytes=size, threads=threads, progress=ui.info)
        rec.update({"teacher": teacher, "out": out,
                    "epochs": len(result.losses) if result else extra["budget"]["epochs"],
                    "final_loss": result.losses[-1] if result and result.losses else None,
                    "config": cfg.to_dict(), **extra, "training": ctx.history})
        _show(rec, json_out)

    @app.command()
    @text_options
    def lowrank(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        energy: float = typer.Option(None, "--energy", help="Keep this fraction of each "
                                     "layer's Σs² (0 < e ≤ 1)."),
        params_ratio: float = typer.Option(None, "--params-ratio", help="Whole-model parameter "
                                           "budget as a fraction of the original's."),
        max_drop_pp: float = typer.Option(None, "--max-drop-pp", help="Whole-model budget: "
                                          "the smallest parameter ratio whose recovered val "
                                          "accuracy is within this many pp of the original."),
        sensitivity: float = typer.Option(None, "--layer-drop-pp", help="Per-layer ranks from a "
                                          "sensitivity sweep: allowed val drop per layer, pp."),
        conv: str = typer.Option("tucker2", "--conv", help="Conv2d factorization: tucker2, cp "
                                 "or skip."),
        ignore: list[str] = typer.Option(None, "--ignore", help="Layer name to leave dense "
                                         "(repeatable)."),
        finetune_epochs: int = typer.Option(None, "--finetune-epochs", help="Fixed fine-tuning "
                                            "epochs (default: recover until validation stops "
                                            "improving, at most 10; 0 = none)."),
        lr: float = typer.Option(None, "--lr", help="Fine-tuning learning rate (default 5e-4)."),
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        out: str = typer.Option(None, "--out", "-o", help="Where to write the factorized model "
                                "(.safetensors); without it the file is measured in a "
                                "temporary folder and not kept."),
        json_out: bool = JsonOpt,
    ):
        """Factorize Linear (SVD) and Conv2d (Tucker-2/CP) layers, recover, and print the
        record vs the original; --max-drop-pp finds the smallest model within a budget."""
        import copy
        import tempfile
        from pathlib import Path

        from ..recovery import RECOVERY, recover
        from ..techniques.edits import save_edited
        from ..techniques.lowrank import LowRank, factorize, plan_ranks
        from ..techniques.lowrank.budget import lowrank_to_budget

        start(json_out)
        chosen = [x is not None for x in (energy, params_ratio, sensitivity, max_drop_pp)]
        if sum(chosen) != 1:
            raise NetpressError("give exactly one of --energy, --params-ratio, --layer-drop-pp "
                                "or --max-drop-pp")
        if conv not in ("tucker2", "cp", "skip"):
            raise NetpressError(f"--conv must be tucker2, cp or skip, not {conv!r}")
        rank_by = ("energy", "params", "sensitivity", "params")[chosen.index(True)]
        settings = RECOVERY["lowrank"].with_(lr, finetune_epochs)
        cfg = LowRank(rank_by=rank_by, energy=energy or 0.9, params_ratio=params_ratio or 0.3,
                      max_drop_pp=sensitivity if sensitivity is not None else 0.5, conv=conv,
                      finetune_epochs=0, lr=settings.lr,
                      targets=Targets(ignore=_pairs(ignore)))
        dense = get_model(model, baseline_weights(model, weights, data, data_dir, seed))
        split = get_task(model, dense, data, data_dir, seed)
        ctx = Context(split, seed=seed, threads=threads)
        extra: dict = {}
        if max_drop_pp is not None:
            res = lowrank_to_budget(dense, ctx, max_drop_pp, cfg, settings=settings,
                                    progress=ui.info)
            if res.model is None:
                raise NetpressError(f"no parameter ratio down to 0.5 kept validation within "
                                    f"{max_drop_pp} pp; allow a larger --max-drop-pp or use "
                                    "--params-ratio/--energy")
            net, plan = res.model, res.plan
            extra["budget"] = res.as_dict()
        else:
            plan = plan_ranks(dense, cfg, ctx)
            if not plan:
                raise NetpressError("no layer gets smaller at these settings; lower --energy or "
                                    "--params-ratio")
            net = factorize(copy.deepcopy(dense), plan)
            if settings.max_epochs:
                run = recover(net, ctx, settings, teacher=dense, description="low-rank: recover")
                extra["recovery"] = {"epochs": len(run.losses), "best_epoch": run.best_epoch,
                                     "lr": settings.lr, "stopped": run.stopped}
        tmp = tempfile.TemporaryDirectory(prefix="netpress-lowrank-") if out is None else None
        path = out or str(Path(tmp.name) / "lowrank.safetensors")
        save_edited(net, path, model, {"seed": str(seed)})
        size = file_size(path)
        if tmp is not None:
            tmp.cleanup()
        rec = api.profile(net, split, name=f"{model} low-rank", baseline=dense,
                          size_bytes=size, threads=threads, progress=ui.info)
        rec.update({"plan": plan, "out": out, "config": cfg.to_dict(), **extra,
                    "training": ctx.history})
        _show(rec, json_out)

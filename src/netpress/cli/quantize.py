"""``netpress quantize`` and ``netpress quantize-diagnose``."""

from __future__ import annotations

import typer
from rich.table import Table

from .. import ui
from ..errors import ConfigError
from ..profile.table import summary_table
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
    get_split,
    get_task,
    start,
    text_options,
)


def _keep(keep: str | None) -> tuple[str, ...]:
    return tuple(k.strip() for k in keep.split(",") if k.strip()) if keep else ()


def forms_table(rec: dict) -> Table:
    """Every deployed form: accuracy, bytes, latency at batch 1 and N."""
    n = rec["latency_ms"]["batch_n"]
    t = Table(title=f"{rec['model']} {rec['scheme']}: every deployed form, "
                    f"{rec['threads']} threads", title_justify="left")
    for col in ("form", "test acc", "val acc", "bytes", "b1 p50 ms", f"b{n} p50 ms",
                f"b{n} vs fp32 torch", ""):
        t.add_column(col, justify="left" if col in ("form", "") else "right")
    base = rec["forms"][0]["latency_ms"]["batchN_p50"]
    for r in rec["forms"]:
        lat = r["latency_ms"]
        t.add_row(r["name"], f"{r['accuracy'] * 100:.2f}%", f"{r['val_accuracy'] * 100:.2f}%",
                  f"{r['size_bytes']:,}", f"{lat['batch1_p50']:.3f}", f"{lat['batchN_p50']:.3f}",
                  f"{base / lat['batchN_p50']:.2f}×",
                  "← chosen" if r["name"] == rec["chosen_form"] else "")
    return t


def mixed_table(mixed: dict) -> Table:
    """Per-layer sensitivity (val KL at each width) and the chosen width."""
    checked = "; ".join(f"{c['name']} {c['average_bits']:.2f} b: val KL {c['val_kl']:.2e}, "
                        f"acc {c['val_accuracy'] * 100:.2f}%" for c in mixed.get("candidates", []))
    t = Table(title=f"mixed precision: budget {mixed['budget_bits']} bits, used "
                    f"{mixed['average_bits']:.2f} ({mixed.get('chosen', 'allocated')} kept; "
                    f"{checked})", title_justify="left")
    t.add_column("layer")
    t.add_column("params", justify="right")
    for b in mixed["bit_choices"]:
        t.add_column(f"KL @{b}b", justify="right")
    t.add_column("chosen", justify="right")
    for r in mixed["layers"]:
        t.add_row(r["name"], f"{r['params']:,}",
                  *[f"{r['kl'][str(b)]:.2e}" for b in mixed["bit_choices"]], f"{r['bits']}")
    return t


def register_commands(app: typer.Typer) -> None:
    """Add the quantization commands to ``app``."""

    @app.command()
    @text_options
    def quantize(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        max_drop_pp: float = typer.Option(None, "--max-drop-pp", help=(
            "Weight-only budget instead of --scheme: the fewest bits (2/3/4/5/6/8, GPTQ or "
            "RTN, whichever scores higher) whose val accuracy is within this many pp.")),
        scheme: str = typer.Option("int8-static", "--scheme", help=(
            "int8-static | int8-dynamic | int8 (both) | w8 | w4-rtn | w4-gptq | w3-gptq | "
            "w2-gptq (weight-only: w2..w8, -rtn or -gptq).")),
        backend: str = typer.Option("auto", "--backend", help=(
            "auto (measure every installed backend, keep the fastest within tolerance) | "
            "onnxruntime | openvino | torch.")),
        group_size: int = typer.Option(128, "--group-size",
                                       help="Weight-only: inputs per scale (0 = per channel)."),
        embedding_bits: int = typer.Option(0, "--embedding-bits", help=(
            "Weight-only: bits of the token-embedding table (RTN per row group; 0 = float).")),
        act_order: bool = typer.Option(False, "--act-order", help=(
            "GPTQ: quantize columns by decreasing Hessian diagonal (groups stay contiguous).")),
        clip: bool = typer.Option(False, "--clip", help=(
            "Weight-only: search each group's range (min-max shrunk up to 30 %) for the "
            "least rounding error.")),
        observer: str = typer.Option("minmax", "--observer", help=(
            "Static int8 activation ranges: minmax | ema | percentile | mse | kl.")),
        qat_epochs: int = typer.Option(0, "--qat-epochs",
                                       help="Quantization-aware fine-tuning epochs after PTQ."),
        qat_method: str = typer.Option("lsq", "--qat-method",
                                       help="Weight-only QAT: lsq (learned steps) | ste."),
        qat_lr: float = typer.Option(1e-4, "--qat-lr", help="QAT Adam learning rate."),
        bits_budget: float = typer.Option(None, "--bits-budget", help=(
            "Weight-only mixed precision: mean bits per weight (choices 2/3/4/5/6/8 per layer).")),
        keep: str = typer.Option(None, "--keep",
                                 help="Comma-separated layer names to keep in float."),
        tolerance_pp: float = typer.Option(0.5, "--tolerance-pp", help=(
            "auto: largest validation accuracy drop (pp) a chosen form may have.")),
        select_at: str = typer.Option("batchN", "--select-at",
                                      help="auto picks the fastest at batch1 or batchN."),
        rounds: int = typer.Option(5, "--rounds", help="Timing rounds (interleaved forms)."),
        out: str = typer.Option(None, "--out", "-o", help="Output folder (created if missing); "
                                "without it the forms are measured in a temporary folder "
                                "and not kept."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Quantize, measure every deployed form (fp32 and int8), keep the best, write DIR."""
        from ..techniques.quantize.run import parse_scheme, quantize_and_measure

        start(json_out)
        parse_scheme(scheme)
        if rounds < 1:
            raise ConfigError("--rounds must be at least 1")
        if qat_method not in ("lsq", "ste"):
            raise ConfigError(f"--qat-method must be lsq or ste, got {qat_method!r}")
        net = get_model(model, baseline_weights(model, weights, data, data_dir, seed))
        split = get_task(model, net, data, data_dir, seed)
        budget = None
        if max_drop_pp is not None:
            from ..context import Context
            from ..targets import Targets
            from ..techniques.quantize.budget import bits_for_budget
            from ..techniques.quantize.weight_only import WeightOnly

            base = WeightOnly(group_size=group_size, act_order=act_order, clip=clip,
                              targets=Targets(ignore=_keep(keep)))
            budget = bits_for_budget(net, Context(split, seed=seed, threads=threads),
                                     max_drop_pp, base, progress=ui.info)
            scheme = f"w{budget['bits']}-{budget['method']}"
            ui.info(f"budget {max_drop_pp} pp: {scheme} is the fewest bits within it")
        rec = quantize_and_measure(
            net, split, model, scheme, out=out, backend=backend, group_size=group_size,
            embedding_bits=embedding_bits, act_order=act_order, clip=clip,
            observer=observer, qat_epochs=qat_epochs, qat_method=qat_method, qat_lr=qat_lr,
            bits_budget=bits_budget, keep=_keep(keep), tolerance_pp=tolerance_pp,
            select_at=select_at, threads=threads, seed=seed, rounds=rounds, say=ui.info)
        if budget is not None:
            rec["budget"] = budget
        if json_out:
            emit_json(rec)
            return
        ui.out_console.print(forms_table(rec))
        if rec.get("mixed_precision"):
            ui.out_console.print(mixed_table(rec["mixed_precision"]))
        ui.out_console.print(summary_table(rec))
        for w in rec["warnings"]:
            ui.out_console.print(f"[bold yellow]warning:[/] {w}")
        ui.out_console.print(f"chosen form: {rec['chosen_form']}; " + (
            f"wrote {', '.join(rec['out_files'])} to {out}" if out else
            "not kept: give --out DIR to keep the files"))

    @app.command("quantize-diagnose")
    def quantize_diagnose(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        scheme: str = typer.Option("w4-rtn", "--scheme", help=(
            "A weight-only scheme (e.g. w4-rtn, w3-gptq) or int8-static (weights and "
            "activations).")),
        group_size: int = typer.Option(128, "--group-size", help="Weight-only: inputs per scale."),
        observer: str = typer.Option("minmax", "--observer", help=(
            "int8-static: activation ranges, minmax | ema | percentile | mse | kl.")),
        worst: int = typer.Option(3, "--worst", help="How many worst layers to name."),
        seed: int = SeedOpt,
        json_out: bool = JsonOpt,
    ):
        """Per-layer SQNR (weights, layer output, model output) naming the worst layers;
        for int8-static also the error accumulated layer by layer and how much of each
        activation the calibrated range clips."""
        from ..techniques.quantize.run import parse_scheme

        start(json_out)
        family, bits, method = parse_scheme(scheme)
        if family == "int8" and method != "static":
            raise ConfigError("quantize-diagnose takes a weight-only scheme (w4-rtn, w3-gptq …) "
                              "or int8-static; dynamic int8 quantizes activations at run time")
        net = get_model(model, weights)
        split = get_split(data, data_dir, seed)
        x = split.val[0][:1000]
        if family == "int8":
            rep = _diagnose_static(net, split, observer, x, worst, seed)
        else:
            from ..techniques.quantize.diagnose import diagnose
            from ..techniques.quantize.weight_only import WeightOnly

            calib = [split.calib[0][i:i + 256] for i in range(0, len(split.calib[0]), 256)]
            rep = diagnose(net, x, WeightOnly(bits, group_size, method), calib, worst)
        rep["model"] = model
        if json_out:
            emit_json(rep)
            return
        ui.out_console.print(_static_table(rep, model, observer) if family == "int8"
                             else _weight_table(rep, model, scheme, group_size))
        ui.out_console.print(f"layers that hurt most: {', '.join(rep['worst'])} — keep them in "
                             f"float with --keep {','.join(rep['worst'][:1])}")


def _diagnose_static(net, split, observer: str, x, worst: int, seed: int) -> dict:
    import copy

    from ..context import Context
    from ..techniques.quantize.diagnose import diagnose_static
    from ..techniques.quantize.ptq import StaticInt8, apply_static_int8

    q = apply_static_int8(copy.deepcopy(net), StaticInt8(method=observer),
                          Context(split, seed=seed))
    rep = diagnose_static(net, q, x, worst)
    rep["observer"] = observer
    return rep


def _weight_table(rep: dict, model: str, scheme: str, group_size: int) -> Table:
    t = Table(title=f"{model} {scheme} g{group_size}: one layer quantized at a time",
              title_justify="left")
    for col in ("layer", "params", "weight SQNR dB", "layer-output SQNR dB",
                "model-output SQNR dB"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for r in rep["layers"]:
        t.add_row(r["name"], f"{r['params']:,}", f"{r['weight_sqnr_db']:.1f}",
                  f"{r['output_sqnr_db']:.1f}", f"{r['model_output_sqnr_db']:.1f}")
    return t


def _static_table(rep: dict, model: str, observer: str) -> Table:
    t = Table(title=f"{model} int8-static ({observer} ranges): SQNR dB with one layer's "
              f"quantizers on, and with all on (model output {rep['model_output_sqnr_db']:.1f})",
              title_justify="left")
    for col in ("layer", "weight", "layer out (alone)", "model out (alone)",
                "layer out (all on)", "input clipped", "output clipped"):
        t.add_column(col, justify="left" if col == "layer" else "right")

    def clip(r: dict, where: str) -> str:
        return f"{r[where]['clipped_share'] * 100:.2f}%" if where in r else "–"

    for r in rep["layers"]:
        w = f"{r['weight_sqnr_db']:.1f}" if "weight_sqnr_db" in r else "–"
        t.add_row(r["name"], w, f"{r['output_sqnr_db']:.1f}", f"{r['model_output_sqnr_db']:.1f}",
                  f"{r['accumulated_output_sqnr_db']:.1f}", clip(r, "input"), clip(r, "output"))
    return t

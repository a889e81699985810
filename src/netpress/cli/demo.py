"""``netpress demo``: the main job end to end on a real model and real data."""

from __future__ import annotations

import json
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
                                   help="Recipe run on the baseline ('' stops after the baseline)."),
        run_dir: str = typer.Option(None, "--run-dir",
                                    help="Run folder (default: a new one under .netpress/runs/)."),
        max_acc_drop: float = typer.Option(0.5, "--max-acc-drop",
                                           help="Gate: largest test accuracy drop, pp."),
        min_ratio: float = typer.Option(10.0, "--min-ratio", help="Gate: smallest compression ratio."),
        max_class_drop: float = typer.Option(None, "--max-class-drop",
                                             help="Gate: largest per-class accuracy drop, pp."),
        compare: bool = typer.Option(True, "--compare/--no-compare",
                                     help="Also run each technique alone (netpress compare) for "
                                          "the report's comparison table."),
    ):
        """The main job: baseline → compress with a recipe → validation → HTML report → gate."""
        if model not in ZOO:
            raise NetpressError(f"demo runs zoo models only; choose one of {', '.join(ZOO)}")
        split = get_split("fashion-mnist", data_dir, seed)
        ui.out_console.rule("1. baseline")
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
        if not recipe:
            return
        from ..evaluate.behaviour_table import behaviour_table, per_class_table
        from ..evaluate.gate import check_budgets, load_report, verdict
        from .compress import compress_and_measure, print_report

        ui.out_console.rule(f"2. compress with {recipe}")
        rec, info = compress_and_measure(model, str(weights), split, recipe, None, seed,
                                         run_dir=run_dir)
        print_report(rec, info)
        folder = Path(rec["run_dir"])
        if compare:
            from ..context import Context
            from ..pipeline.compare import compare_techniques
            from ..report.write import write_report
            from .search import compare_table

            ui.out_console.rule("2b. each technique alone, for comparison (netpress compare)")
            table = compare_techniques(net, model, Context(split, seed=seed), folder, 1,
                                       max_acc_drop, progress=ui.info)
            ui.out_console.print(compare_table(table))
            rec["report"] = {k: str(v) for k, v in write_report(folder).items()}
        ui.out_console.rule("3. validation beyond accuracy (test data)")
        beh = json.loads((folder / "behaviour.json").read_text())
        ui.out_console.print(behaviour_table(beh))
        ui.out_console.print(per_class_table(beh))
        ui.out_console.rule("4. report")
        ui.out_console.print(f"HTML report: {rec['report']['html']}\n"
                             f"CI summary:  {rec['report']['markdown']}\n"
                             f"gate input:  {rec['report']['json']}")
        ui.out_console.rule("5. gate")
        checks = check_budgets(load_report(rec["report"]["json"]), max_acc_drop=max_acc_drop,
                               min_ratio=min_ratio, max_class_drop=max_class_drop)
        for c in checks:
            ui.out_console.print(c.text, style="green" if c.passed else "bold red", highlight=False)
        passed = all(c.passed for c in checks)
        ui.out_console.print(verdict(checks), style="green" if passed else "bold red",
                             highlight=False)
        if not passed:
            raise typer.Exit(1)

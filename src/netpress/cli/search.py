"""``netpress search`` (technique mixes under budgets, with Optuna) and ``netpress compare``
(every technique alone at standard settings)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from .. import ui
from ..context import Context
from ..errors import ConfigError
from ..pipeline.compare import compare_techniques
from ..pipeline.search import KB, Budgets, SearchResult, run_search
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
    get_task,
    start,
    text_options,
)

SHORT = {"sparsity": "sparsity", "allocation": "alloc", "self_distill": "distill",
         "fc_bits": "fc", "conv_bits": "conv", "bias_bits": "bias"}


def default_run_dir(kind: str) -> Path:
    """A fresh ``.netpress/runs/<YYYYmmdd-HHMMSS>-<kind>`` folder name.

    Example:
        >>> default_run_dir("search").parent.as_posix()
        '.netpress/runs'
    """
    return Path(".netpress") / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}"


def _params(p: dict) -> str:
    out = []
    for k, v in p.items():
        v = f"{v:.3f}" if isinstance(v, float) and k == "sparsity" else v
        out.append(f"{SHORT.get(k, k)}={v}")
    return " ".join(out)


def trials_table(trials: list[dict], title: str = "search trials") -> Table:
    """The progress / results table of trial records (as in trials.json).

    Example:
        >>> trials_table([]).row_count
        0
    """
    t = Table(title=title, title_justify="left")
    for c, j in (("#", "right"), ("params", "left"), ("val acc", "right"), ("drop pp", "right"),
                 ("size KB", "right"), ("latency ms", "right"), ("feasible", "center")):
        t.add_column(c, justify=j)  # type: ignore[arg-type]
    for r in trials:
        mark = "yes" if r["feasible"] else "no"
        if r.get("pareto"):
            mark += " *"
        t.add_row(str(r["number"]), _params(r["params"]), f"{r['val_accuracy'] * 100:.2f}%",
                  f"{r['accuracy_drop_pp']:+.2f}", f"{r['size_bytes'] / KB:.1f}",
                  f"{r['latency_ms']:.3f}", mark)
    return t


def _print_search(res: SearchResult) -> None:
    front = [r for r in res.trials if r["pareto"]]
    ui.out_console.print(trials_table(front, "Pareto front (all trials; * = on the front)"))
    ui.out_console.print(f"feasible Pareto front: {res.pareto_feasible or 'none'}")
    b = res.best
    if b is None:
        ui.out_console.print("no trial met every budget; loosen a budget or run more trials "
                             f"(--trials). Trials: {res.run_dir / 'trials.json'}")
        return
    ui.out_console.print(
        f"best candidate: trial {b['number']}: {b['size_bytes']:,} bytes "
        f"({b['compression_ratio']:.1f}× vs fp32), validation {b['val_accuracy'] * 100:.2f}% "
        f"({b['accuracy_drop_pp']:+.2f} pp), test {res.best_test_accuracy * 100:.2f}%, "
        f"{b['latency_ms']:.3f} ms batch 1\n"
        f"recipe: {res.best_recipe_path} (netpress compress --recipe {res.best_recipe_path})\n"
        f"artifact: {res.best_artifact_path}; run folder: {res.run_dir}")


def compare_table(out: dict) -> Table:
    """The technique comparison table of a compare.json dict."""
    t = Table(title=f"{out['model']} — each technique alone (budget {out['max_acc_drop_pp']:g} pp)",
              title_justify="left")
    for c, j in (("technique", "left"), ("settings", "left"), ("size", "right"),
                 ("ratio", "right"), ("val acc", "right"), ("drop pp", "right"),
                 ("latency ms", "right"), ("in budget", "center"), ("size source", "left")):
        t.add_column(c, justify=j)  # type: ignore[arg-type]
    for r in out["rows"]:
        t.add_row(r["technique"], r["settings"], f"{r['size_bytes']:,}",
                  f"{r['compression_ratio']:.1f}×", f"{r['accuracy'] * 100:.2f}%",
                  f"{r['accuracy_drop_pp']:+.2f}", f"{r['latency_ms']:.3f}",
                  "yes" if r["within_budget"] else "no", r["size_source"])
    return t


def deploy_table(trials: list[dict], title: str = "deploy search trials") -> Table:
    """The table of a deploy search's trial records (as in trials.json).

    Example:
        >>> deploy_table([]).row_count
        0
    """
    t = Table(title=title, title_justify="left")
    sizes = sorted({b for r in trials for b in r["speedup"]}, key=lambda b: int(b[1:]))
    for c in ("#", "heads", "ffn", "form", "score", "drop pp", "recall@10", "file MB",
              *[f"× {b}" for b in sizes], "feasible"):
        t.add_column(c, justify="left" if c in ("form", "feasible") else "right")
    for r in trials:
        p = r["params"]
        rec = r.get("recall_at_10")
        t.add_row(str(r["number"]), f"{p['heads']:g}", f"{p['ffn']:g}", p["form"],
                  f"{r['val_accuracy']:.4f}", f"{r['accuracy_drop_pp']:+.2f}",
                  f"{rec:.3f}" if isinstance(rec, float) else "–",
                  f"{r['size_bytes'] / 1e6:.1f}", *[f"{r['speedup'][b]:.2f}" for b in sizes],
                  ("yes" if r["feasible"] else "no") + (" *" if r.get("pareto") else ""))
    return t


def _deploy_search(model, weights, data, data_dir, max_acc_drop, max_size_kb, min_speedup,
                   batch_sizes, examples, trials, epochs, run_dir, seed, threads, json_out):
    from ..pipeline.deploy_search import DeployBudgets, run_deploy_search
    from .export import _batch_sizes

    budgets = DeployBudgets(max_acc_drop, max_size_kb, min_speedup)
    if trials is None or trials < 1:
        raise ConfigError("--space deploy runs --trials N points of its grid (24 in all)")
    if epochs < 1 or epochs != int(epochs):
        raise ConfigError(f"--epochs {epochs}: the deploy search fine-tunes whole epochs")
    sizes = _batch_sizes(batch_sizes)
    folder = Path(run_dir) if run_dir else default_run_dir("search")
    net = get_model(model, weights)
    task = get_task(model, net, data, data_dir, seed)
    if not isinstance(task.example_inputs(1, "val"), dict) or \
            "attention_mask" not in task.example_inputs(1, "val"):
        raise ConfigError("--space deploy searches transformer forms (heads, FFN, int8, 4-bit): "
                          "it needs a Hugging Face text model (--model hf:DIR); use --space mix")

    def on_trial(r: dict) -> None:
        p = r["params"]
        ui.info(f"trial {r['number']}: heads {p['heads']:g} ffn {p['ffn']:g} {p['form']}: "
                f"score {r['val_accuracy']:.4f} ({r['accuracy_drop_pp']:+.2f} pp), "
                f"{r['size_bytes'] / 1e6:.1f} MB, speed-up "
                + ", ".join(f"{v:.2f}× {b}" for b, v in r["speedup"].items())
                + (", feasible" if r["feasible"] else ", infeasible"))

    res = run_deploy_search(net, model, task, budgets, trials, folder, sizes, int(epochs),
                            seed, threads, limit=examples, on_trial=on_trial, progress=ui.info)
    if json_out:
        emit_json({"run_dir": str(folder), "baseline_val_score": res.baseline_val_score,
                   "trials": res.trials, "best": res.best, "best_test": res.best_test,
                   "seconds": res.seconds})
        return
    ui.out_console.print(deploy_table(res.trials, "deploy search (* = on the Pareto front)"))
    b = res.best
    if b is None:
        ui.out_console.print("no trial met every budget; loosen a budget or run more trials. "
                             f"Trials: {folder / 'trials.json'}")
        return
    t = res.best_test or {}
    ui.out_console.print(
        f"best: trial {b['number']} ({b['params']}): {b['size_bytes']:,} bytes, validation "
        f"score {b['val_accuracy']:.4f}; on test: score {t.get('score', float('nan')):.4f}, "
        + ", ".join(f"{v:.2f}× at {k}" for k, v in (t.get("speedup") or {}).items())
        + f"\ndeploy: {b['deploy']}; artifact: {folder / 'best.netpress'}"
        + (f"; recipe: {folder / 'best-recipe.yaml'}" if (folder / "best-recipe.yaml").exists()
           else ""))


def register_commands(app: typer.Typer) -> None:
    """Add ``search`` and ``compare`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    @text_options
    def search(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        max_acc_drop: float = typer.Option(..., "--max-acc-drop",
                                           help="Allowed validation accuracy drop, pp."),
        max_size_kb: float = typer.Option(None, "--max-size-kb",
                                          help="Largest artifact, KB (1 KB = 1000 bytes)."),
        max_latency_ms: float = typer.Option(None, "--max-latency-ms",
                                             help="Slowest batch-1 median latency, ms."),
        trials: int = typer.Option(None, "--trials", "-n", help="Trials to run (more if resumed)."),
        study_trials: int = typer.Option(None, "--study-trials", help=(
            "Run trials until the study holds this many, together with every other worker on "
            "the same --storage and --study-name (instead of --trials).")),
        worker: int = typer.Option(0, "--worker", help="This worker's number (0, 1, …): "
                                   "offsets the sampler seed so workers explore apart."),
        epochs: float = typer.Option(1.0, "--epochs", help="Fine-tuning epochs per trial; a "
                                     "fraction < 1 trains one epoch on that share of the data."),
        run_dir: str = typer.Option(None, "--run-dir", help="Run folder (default: a fresh "
                                    ".netpress/runs/<time>-search)."),
        storage: str = typer.Option(None, "--storage", help="Optuna storage URL (default "
                                    "sqlite:///RUN_DIR/search.db); share one to search together."),
        study_name: str = typer.Option("netpress-search", "--study-name",
                                       help="Study in the storage; an existing one is resumed."),
        space: str = typer.Option("auto", "--space", help=(
            "mix (pruning + weight sharing, the CNN search) | deploy (transformers: heads / "
            "FFN removed × fp32 / int8 / int8 with float layers / 4-bit, timed as deployed) | "
            "auto (deploy for a Hugging Face model, else mix).")),
        min_speedup: float = typer.Option(None, "--min-speedup", help=(
            "deploy: the smallest speed-up against the model in torch eager, at every "
            "--batch-sizes.")),
        batch_sizes: str = typer.Option("1,32", "--batch-sizes", help=(
            "deploy: batch sizes to time (comma-separated).")),
        examples: int = typer.Option(128, "--examples", help=(
            "deploy: validation examples per timed pass.")),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Search technique mixes under budgets; print the Pareto front and the best recipe."""
        start(json_out)
        if space not in ("auto", "mix", "deploy"):
            raise ConfigError(f"--space {space!r}: use auto, mix or deploy")
        if space == "deploy" or (space == "auto" and model and model.startswith("hf:")):
            ignored = [flag for flag, given in (
                ("--max-latency-ms", max_latency_ms is not None), ("--storage", storage),
                ("--study-trials", study_trials is not None), ("--worker", worker != 0),
                ("--study-name", study_name != "netpress-search")) if given]
            if ignored:
                raise ConfigError(f"{', '.join(ignored)}: not options of the deploy search "
                                  "(--space deploy, a Hugging Face model); its budgets are "
                                  "--max-acc-drop, --max-size-kb and --min-speedup, its study "
                                  "lives in the run folder (--run-dir resumes it)")
            _deploy_search(model, weights, data, data_dir, max_acc_drop, max_size_kb,
                           min_speedup, batch_sizes, examples, trials, epochs, run_dir, seed,
                           threads, json_out)
            return
        if min_speedup is not None:
            raise ConfigError("--min-speedup is a budget of --space deploy (transformers); "
                              "the mix search takes --max-latency-ms")
        budgets = Budgets(max_acc_drop, max_size_kb, max_latency_ms)
        if (trials is None) == (study_trials is None):
            raise ConfigError("give either --trials N (this worker runs N trials) or "
                              "--study-trials N (workers sharing a --storage run N together)")
        if trials is not None and trials < 1:
            raise ConfigError(f"--trials {trials}: a search needs at least 1 trial")
        folder = Path(run_dir) if run_dir else default_run_dir("search")
        net = get_model(model, weights)
        split = get_task(model, net, data, data_dir, seed)
        rows: list[dict] = []
        tty = not json_out and sys.stderr.isatty()
        live = Live(trials_table(rows), console=ui.err_console) if tty else None

        def on_trial(rec: dict) -> None:
            rows.append(rec)
            if live is not None:
                live.update(trials_table(rows))
            else:
                ui.info(f"trial {rec['number']}: {_params(rec['params'])}: val "
                        f"{rec['val_accuracy'] * 100:.2f}% ({rec['accuracy_drop_pp']:+.2f} pp), "
                        f"{rec['size_bytes'] / KB:.1f} KB, {rec['latency_ms']:.3f} ms, "
                        f"{'feasible' if rec['feasible'] else 'infeasible'}")

        if live is not None:
            live.start()
        try:
            res = run_search(net, model, split, budgets, trials or 0, folder, epochs=epochs,
                             storage=storage, study_name=study_name, seed=seed, threads=threads,
                             weights=weights, on_trial=on_trial, progress=ui.info,
                             study_trials=study_trials, worker=worker)
        finally:
            if live is not None:
                live.stop()
        if json_out:
            emit_json({"run_dir": str(folder), "baseline_val_accuracy": res.baseline_val_accuracy,
                       "baseline_size_bytes": res.baseline_size_bytes, "trials": res.trials,
                       "pareto": res.pareto, "pareto_feasible": res.pareto_feasible,
                       "best": res.best, "best_test_accuracy": res.best_test_accuracy,
                       "best_recipe": str(res.best_recipe_path) if res.best_recipe_path else None,
                       "best_artifact": str(res.best_artifact_path) if res.best_artifact_path
                       else None, "seconds": res.seconds})
            return
        _print_search(res)

    @app.command()
    @text_options
    def compare(
        model: str = ModelOpt,
        weights: str = WeightsOpt,
        data: str = DataOpt,
        data_dir: str = DataDirOpt,
        max_acc_drop: float = typer.Option(0.5, "--max-acc-drop",
                                           help="Allowed validation accuracy drop, pp."),
        epochs: int = typer.Option(1, "--epochs", help="Fine-tuning epochs of each rung."),
        run_dir: str = typer.Option(None, "--run-dir", help="Where compare.json and the files "
                                    "go (default: a fresh .netpress/runs/<time>-compare)."),
        seed: int = SeedOpt,
        threads: int = ThreadsOpt,
        json_out: bool = JsonOpt,
    ):
        """Each technique alone at standard settings: size, ratio, accuracy drop, latency."""
        start(json_out)
        Budgets(max_acc_drop)
        if epochs < 1:
            raise ConfigError(f"--epochs {epochs}: compare fine-tunes whole epochs (>= 1)")
        folder = Path(run_dir) if run_dir else default_run_dir("compare")
        net = get_model(model, weights)
        split = get_task(model, net, data, data_dir, seed)
        ctx = Context(split, seed=seed, threads=threads)
        out = compare_techniques(net, model, ctx, folder, epochs, max_acc_drop, threads,
                                 progress=ui.info)
        if json_out:
            emit_json({**out, "run_dir": str(folder)})
            return
        ui.out_console.print(compare_table(out))
        b = out["best_single"]
        ui.out_console.print(
            f"most compressed single technique within {max_acc_drop:g} pp: "
            + (f"{b['technique']} ({b['settings']}), {b['size_bytes']:,} bytes, "
               f"{b['compression_ratio']:.1f}×" if b else "none")
            + f"\nwrote {folder / 'compare.json'}")

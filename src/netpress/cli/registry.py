"""``netpress register``, ``promote``, ``rollback`` and ``registry list|show``: the MLflow
model registry with lineage and gated promotion (see ``netpress.registry``)."""

from __future__ import annotations

import typer

from .. import ui
from .common import JsonOpt, emit_json, start

UriOpt = typer.Option(None, "--tracking-uri",
                      help="MLflow tracking/registry URI (default $NETPRESS_TRACKING_URI, "
                           "$MLFLOW_TRACKING_URI, else sqlite:///.netpress/mlflow.db).")


def register_commands(app: typer.Typer) -> None:
    """Add the registry commands to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """
    registry_app = typer.Typer(no_args_is_help=True, help="List registered models and show one.")
    app.add_typer(registry_app, name="registry")

    @app.command()
    def register(
        run_dir: str = typer.Argument(..., help="A finished run folder of `netpress compress`."),
        name: str = typer.Option(..., "--name", "-n", help="Registered model name."),
        parent: str = typer.Option(None, "--parent",
                                   help="Parent version (default: the current champion)."),
        data_dir: str = typer.Option(None, "--data-dir",
                                     help="Where the run's data files are, to hash them."),
        description: str = typer.Option(None, "--description", help="Version description."),
        tracking_uri: str = UriOpt,
        json_out: bool = JsonOpt,
    ):
        """Log a run's artifact, report, model card, metrics and lineage as a new version."""
        from ..registry import Store
        from ..registry import register as do_register

        start(json_out)
        store = Store(tracking_uri)
        v = do_register(store, run_dir, name, data_dir=data_dir, parent=parent,
                        description=description)
        if json_out:
            emit_json({**v, "tracking_uri": store.uri})
            return
        lin = v["lineage"]
        ui.out_console.print(f"registered {name} version {v['version']} (parent "
                             f"{v['parent_version'] or 'none'}) in {store.uri}\n"
                             f"artifact sha256 {lin['artifact']['sha256']}\n"
                             f"promote it with: netpress promote {name} --version {v['version']} "
                             "--max-acc-drop PP", highlight=False)

    @app.command()
    def promote(
        name: str = typer.Argument(..., help="Registered model name."),
        version: str = typer.Option(..., "--version", "-v", help="Version to promote."),
        max_acc_drop: float = typer.Option(None, "--max-acc-drop",
                                           help="Largest allowed accuracy drop, pp."),
        min_ratio: float = typer.Option(None, "--min-ratio", help="Smallest compression ratio."),
        max_latency_ms: float = typer.Option(None, "--max-latency-ms",
                                             help="Largest batch-1 median latency, ms."),
        max_class_drop: float = typer.Option(None, "--max-class-drop",
                                             help="Largest per-class accuracy drop, pp."),
        tracking_uri: str = UriOpt,
        json_out: bool = JsonOpt,
    ):
        """Gate a version's report and move `champion` to it only if every budget holds:
        exit 0 if moved, 1 if a budget fails, 2 on bad input (as `netpress gate`)."""
        from ..evaluate.gate import verdict
        from ..registry import ALIAS, Store
        from ..registry import promote as do_promote

        start(json_out)
        store = Store(tracking_uri)
        checks, moved = do_promote(store, name, version, max_acc_drop=max_acc_drop,
                                   min_ratio=min_ratio, max_latency_ms=max_latency_ms,
                                   max_class_drop=max_class_drop)
        if json_out:
            emit_json({"name": name, "version": version, "passed": moved, "alias": ALIAS,
                       "moved": moved, "checks": [c.as_dict() for c in checks]})
        else:
            for c in checks:
                ui.out_console.print(c.text, style="green" if c.passed else "bold red",
                                     highlight=False)
            ui.out_console.print(verdict(checks), highlight=False)
            ui.out_console.print(f"{ALIAS} -> {name} version {version}" if moved else
                                 f"{ALIAS} not moved", highlight=False)
        if not moved:
            raise typer.Exit(1)

    @app.command()
    def rollback(
        name: str = typer.Argument(..., help="Registered model name."),
        tracking_uri: str = UriOpt,
        json_out: bool = JsonOpt,
    ):
        """Move `champion` back to the previous champion."""
        from ..registry import Store
        from ..registry import rollback as do_rollback

        start(json_out)
        res = do_rollback(Store(tracking_uri), name)
        if json_out:
            emit_json(res)
            return
        ui.out_console.print(f"champion of {name}: version {res['from']} -> {res['to']}",
                             highlight=False)

    @registry_app.command("list")
    def list_cmd(tracking_uri: str = UriOpt, json_out: bool = JsonOpt):
        """Registered models with their number of versions and aliases."""
        from ..registry import Store, list_models

        start(json_out)
        rows = list_models(Store(tracking_uri))
        if json_out:
            emit_json({"models": rows})
            return
        for r in rows:
            aliases = ", ".join(f"{a}={v}" for a, v in r["aliases"].items()) or "no aliases"
            ui.out_console.print(f"{r['name']}: {r['versions']} versions, {aliases}", highlight=False)
        if not rows:
            ui.out_console.print("no registered models; add one with `netpress register RUN_DIR "
                                 "--name N`")

    @registry_app.command("show")
    def show_cmd(name: str = typer.Argument(..., help="Registered model name."),
                 tracking_uri: str = UriOpt, json_out: bool = JsonOpt):
        """Versions (newest first), aliases, lineage hashes and gate results of one model."""
        from rich.table import Table

        from ..registry import Store, describe

        start(json_out)
        d = describe(Store(tracking_uri), name)
        if json_out:
            emit_json(d)
            return
        t = Table(title=f"{name} (champion history {' → '.join(d['champion_history']) or '–'})")
        for col in ("version", "aliases", "parent", "artifact sha256", "baseline weights sha256",
                    "gate"):
            t.add_column(col)
        for v in d["versions"]:
            gate = v["gate"]
            g = "–" if gate is None else ("PASS" if all(c["passed"] for c in gate) else "FAIL")
            t.add_row(v["version"], ", ".join(v["aliases"]) + (" (rolled back)" if v["rolled_back"]
                                                               else ""),
                      v["lineage"].get("parent_version", "–"),
                      str(v["lineage"].get("artifact_sha256"))[:16],
                      str(v["lineage"].get("baseline_weights_sha256"))[:16], g)
        ui.out_console.print(t)

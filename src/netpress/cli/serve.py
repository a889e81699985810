"""``netpress serve``: serve an artifact, a run folder or a registry alias over HTTP."""

from __future__ import annotations

import typer

from .. import ui


def register_commands(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    def serve(
        source: str = typer.Argument(None, help="A .netpress file, a run folder, or "
                                                "models:/NAME@ALIAS | models:/NAME/VERSION."),
        variant: list[str] = typer.Option(None, "--variant", help=(
            "NAME=SOURCE, repeatable: the ladder of variants, best (slowest) first, after "
            "SOURCE.")),
        baseline: str = typer.Option(None, "--baseline", help=(
            "fp32 baseline .netpress for shadow mode (default: baseline.netpress beside the "
            "first variant).")),
        reference: str = typer.Option(None, "--reference", help=(
            "Drift reference JSON (default: reference.json beside the first variant).")),
        config: str = typer.Option(None, "--config", help="YAML file of serve settings "
                                                          "(docs/serve.md)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="TCP port."),
        watch: float = typer.Option(None, "--watch", help=(
            "Poll registry aliases every this many seconds and hot-swap a new champion.")),
        admin: bool = typer.Option(True, "--admin/--no-admin",
                                   help="Offer POST /admin/reload (hot swap on demand)."),
        cache: str = typer.Option(".netpress/serve-cache", "--cache",
                                  help="Where registry versions are downloaded."),
        tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry URI."),
    ):
        """Serve with micro-batching, health and readiness, Prometheus metrics, shadow mode,
        drift monitoring and a latency-budget variant ladder (docs/serve.md)."""
        import dataclasses

        from ..serve.app import build_app
        from ..serve.config import ServeConfig
        from ..serve.server import run
        from ..serve.sources import parse_variants

        pairs = parse_variants(source, variant)
        cfg = ServeConfig.from_file(config) if config else ServeConfig()
        if watch is not None:
            cfg = dataclasses.replace(cfg, watch_seconds=watch)
        app = build_app(pairs, cfg, baseline=baseline, reference=reference, cache=cache,
                        tracking_uri=tracking_uri, admin=admin)
        ui.info(f"serving {', '.join(f'{n}={s}' for n, s in pairs)} on http://{host}:{port} "
                "(POST /v1/predict, GET /metrics, /healthz, /readyz, /v1/status)")
        run(app, host, port)

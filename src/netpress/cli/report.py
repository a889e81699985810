"""``netpress report RUN_DIR``: the HTML page, report.json and the Markdown summary of a run."""

from __future__ import annotations

import typer

from .. import ui
from .common import start


def register_commands(app: typer.Typer) -> None:
    """Add ``report`` to ``app``.

    Example:
        >>> register_commands(typer.Typer())
    """

    @app.command()
    def report(
        run_dir: str = typer.Argument(..., help="A run folder written by `netpress compress "
                                                "--run-dir` or `netpress search --run-dir`."),
        html: str = typer.Option(None, "--html", help="Where to write the HTML report "
                                                      "(default RUN_DIR/report.html)."),
        markdown: str = typer.Option(None, "--markdown", help="Where to write the Markdown "
                                                              "summary (default RUN_DIR/report.md)."),
        json_path: str = typer.Option(None, "--json", help="Where to write report.json "
                                                           "(default RUN_DIR/report.json)."),
    ):
        """Write a self-contained HTML report, report.json (for `netpress gate`) and report.md.

        --json here names the report.json to write (it is a file, not stdout).
        """
        start(False)
        from ..report import write_report

        paths = write_report(run_dir, html=html, markdown=markdown, json_path=json_path)
        ui.out_console.print(f"HTML report:      {paths['html']}")
        ui.out_console.print(f"JSON for the gate: {paths['json']}")
        ui.out_console.print(f"Markdown summary:  {paths['markdown']}")

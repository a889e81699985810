"""Write a run's report files: report.json, report.html, report.md and the model card
(model_card.json, model_card.md), atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import json_safe, write_bytes
from .build import build_report
from .card import build_card, save_card
from .data import load_run
from .html import render_html
from .markdown import render_markdown
from .plots import make_plots


def write_report(run_dir: str | os.PathLike, html: str | os.PathLike | None = None,
                 markdown: str | os.PathLike | None = None,
                 json_path: str | os.PathLike | None = None) -> dict[str, Path]:
    """Read ``run_dir`` and write the three report files (defaults: report.html, report.md
    and report.json inside it). Returns ``{"html": path, "markdown": path, "json": path}``.

    Example:
        >>> paths = write_report("runs/r1")  # doctest: +SKIP
        >>> paths["html"].name  # doctest: +SKIP
        'report.html'
    """
    data = load_run(run_dir)
    root = Path(run_dir)
    paths = {"html": Path(html) if html else root / "report.html",
             "markdown": Path(markdown) if markdown else root / "report.md",
             "json": Path(json_path) if json_path else root / "report.json"}
    report = build_report(data)
    plots = make_plots(data)
    report["plots"] = list(plots)
    card = build_card(data)
    card_paths = save_card(root, card)
    report["model_card"] = {k: str(v) for k, v in card_paths.items()}
    report["report_files"] = {k: str(v) for k, v in paths.items()}
    write_bytes(paths["json"], (json.dumps(json_safe(report), indent=2, allow_nan=False)
                                + "\n").encode())
    write_bytes(paths["html"], render_html(data, report, plots, card).encode("utf-8"))
    write_bytes(paths["markdown"], render_markdown(data, report, str(paths["html"])).encode("utf-8"))
    return {**paths, **card_paths}

"""The HTML report: one self-contained file (inline CSS, PNGs as data: URIs, no URLs).

A tiny inline script counts, on load, the images that decoded (``naturalWidth > 0``)
and writes ``data-images-loaded`` / ``data-images-total`` on ``<body>``, so a headless
browser can prove every plot rendered.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

from .data import RunData, num
from .points import run_points
from .tables import (
    Table,
    behaviour_table,
    compare_table,
    pareto_table,
    per_class_table,
    stages_table,
    summary_table,
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
 color:#222;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;
 padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}.note{color:#8a6d3b;background:#fcf8e3;padding:.4rem .6rem;
 border-left:3px solid #e0c36a}.meta{color:#555;font-size:.9rem}pre{background:#f6f6f6;
 padding:.5rem;overflow-x:auto;font-size:.8rem}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-total', String(imgs.length));
});
"""


def table_html(table: Table) -> str:
    """An HTML table of strings (escaped).

    Example:
        >>> table_html((["a"], [["<1>"]]))
        '<table><tr><th>a</th></tr><tr><td>&lt;1&gt;</td></tr></table>'
    """
    head, rows = table
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows]
    return "".join(out) + "</table>"


def figure_html(key: str, title: str, png: bytes) -> str:
    """One plot as an ``<img>`` with a base64 data URI and a caption.

    Example:
        >>> figure_html("k", "T", b"x")[:40]
        '<figure id="plot-k"><img alt="T" src="d'
    """
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure id="plot-{escape(key)}"><img alt="{escape(title)}" '
            f'src="data:image/png;base64,{b64}"><figcaption>{escape(title)}</figcaption></figure>')


def _note(data: RunData, name: str) -> str:
    return f'<p class="note">{escape(data.note(name))}</p>'


def _section(title: str, body: list[str]) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(body)}</section>"


def _summary(data: RunData, report: dict) -> str:
    if data.record is not None:
        return table_html(summary_table(data.record))
    if report.get("best"):
        return (f'<p>No record.json: figures of the best trial {escape(str(report["best"].get("number")))}'
                " (validation data) are in the search section below.</p>" + _note(data, "record.json"))
    return _note(data, "record.json")


def _search(data: RunData, report: dict) -> list[str]:
    if not data.trials:
        return [_note(data, "trials.json")]
    t = report.get("trials", {})
    budgets = ", ".join(f"{k}={v}" for k, v in (report.get("budgets") or {}).items()) or "none"
    body = [f"<p>{t.get('total', 0)} trials, {t.get('feasible', 0)} meet every budget "
            f"({escape(budgets)}).</p>", table_html(pareto_table(run_points(data),
                                                                  data.trials.get("best")))]
    best = report.get("best")
    if best:
        body.append(f"<h3>Best candidate: trial {escape(str(best.get('number')))}</h3><p>"
                    f"validation accuracy {num(best.get('val_accuracy'), 2, '%', 100)}, drop "
                    f"{num(best.get('accuracy_drop_pp'), 2, ' pp')}, size "
                    f"{num(best.get('size_bytes'), 0, ' B')}; its recipe is best-recipe.yaml.</p>")
        if best.get("recipe"):
            body.append(f"<pre>{escape(json.dumps(best['recipe'], indent=1))}</pre>")
    else:
        body.append("<p>No trial meets every budget.</p>")
    return body


def _card(card: dict) -> list[str]:
    from .card import fmt

    en = card["energy"]
    rows = [[r["metric"], fmt(r["baseline"], r["unit"]), fmt(r["compressed"], r["unit"])]
            for r in card["comparison"]]
    rows += [["energy per inference (estimate)", fmt(en.get("baseline_mj"), "mJ"),
              fmt(en.get("compressed_mj"), "mJ")]]
    lin = card["lineage"]
    hashes = [[k, (lin.get(k) or {}).get("sha256") or (lin.get(k) or {}).get("note", "–")]
              for k in ("baseline_weights", "artifact", "baseline_artifact")]
    hashes += [[f"data {Path(str(e.get('path'))).name}", e.get("sha256") or e.get("note")]
               for e in lin.get("data_files", [])]
    return [f"<p>{escape(card['intended_use'])}</p>",
            f'<p class="meta">Measured on {escape(str(card["cpu"]))}; generated by '
            f"{escape(card['generated_by'])}; also in model_card.md and model_card.json.</p>",
            table_html((["metric", "baseline", "compressed"], rows)),
            f'<p class="meta">Energy: {escape(en["method"])}.</p>',
            "<h3>Lineage (SHA-256)</h3>", table_html((["file", "sha256"], hashes)),
            "<h3>Known limitations</h3><ul>"
            + "".join(f"<li>{escape(t)}</li>" for t in card["limitations"]) + "</ul>"]


def render_html(data: RunData, report: dict, plots: dict[str, tuple[str, bytes]],
                card: dict | None = None) -> str:
    """The whole report page for ``data``, with ``report`` from build_report and
    ``plots`` from make_plots (every plot appears exactly once as an ``<img>``).

    Example:
        >>> d = load_run("runs/r1")  # doctest: +SKIP
        >>> page = render_html(d, build_report(d), make_plots(d))  # doctest: +SKIP
    """
    run = data.run
    fig = {k: figure_html(k, t, png) for k, (t, png) in plots.items()}
    title = f"netpress report: {run.get('model', '?')} ({data.kind})"
    meta = (f"data {run.get('data', '?')} · seed {run.get('seed', '?')} · threads "
            f"{run.get('threads', '?')} · status {run.get('status', '?')} · recipe "
            f"{(run.get('recipe') or {}).get('name', '–')} · folder {data.run_dir}")
    trade = [fig[k] for k in ("accuracy_vs_size", "accuracy_vs_latency") if k in fig]
    if not trade:
        trade = [_note(data, "trials.json" if data.kind == "search" else "record.json")]
    elif data.kind == "compress" and data.compare is None:
        trade.append(_note(data, "compare.json"))
    stages = run.get("stages") or []
    parts = [
        _section("Before / after", [_summary(data, report)]),
        _section("Accuracy vs size and latency", trade),
    ]
    if card is not None:
        parts.append(_section("Model card", _card(card)))
    if data.kind == "search":
        parts.append(_section("Search: Pareto front and best candidate", _search(data, report)))
    score_name = run.get("score_name") or (data.record or {}).get("score_name")
    parts.append(_section("Stages", [table_html(stages_table(stages, run.get(
        "baseline_val_accuracy"), score_name))] if stages or run.get("baseline_val_accuracy")
        is not None else ["<p>run.json lists no stages.</p>"]))
    if data.behaviour:
        beh = [table_html(behaviour_table(data.behaviour))]
        if data.behaviour.get("per_class"):
            beh += ["<h3>Per-class accuracy (largest drop first)</h3>",
                    table_html(per_class_table(data.behaviour))]
    else:
        beh = [_note(data, "behaviour.json")]
    parts.append(_section("Behaviour beyond accuracy (test data)", beh))
    parts.append(_section("Technique comparison on this model",
                          [table_html(compare_table(data.compare))] if data.compare
                          else [_note(data, "compare.json")]))
    sens_note = (data.sensitivity or {}).get("note")
    parts.append(_section("Per-layer sensitivity", [fig.get("sensitivity") or
                                                    _note(data, "sensitivity.json")]
                          + ([f'<p class="meta">{escape(str(sens_note))}</p>'] if sens_note else [])))
    parts.append(_section("Weight histograms", [fig.get("histograms") or
                                                _note(data, "histograms.json")]))
    size_note = _note(data, "model.netpress") + _note(data, "record.json")
    parts.append(_section("Artifact size breakdown", [fig.get("size_breakdown") or size_note]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
            f"<body data-images-loaded=\"0\" data-images-total=\"{len(plots)}\">"
            f"<h1>{escape(title)}</h1><p class=\"meta\">{escape(meta)}</p>"
            + "".join(parts) + "</body></html>\n")

"""``report.md``: a short summary of a run for a CI comment.

Facts only, no verdict (that is ``netpress gate``'s job): the before/after table,
the budgets and stage checks, the worst class, calibration, robustness, and where
the full HTML report is.
"""

from __future__ import annotations

from ..tasks.base import score_label
from .data import RunData, num
from .tables import ROBUSTNESS, Table, behaviour_table, summary_table


def table_md(table: Table) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped).

    Example:
        >>> print(table_md((["a", "b"], [["1", "x|y"]])))
        | a | b |
        |---|---:|
        | 1 | x\\|y |
    """
    head, rows = table

    def cell(c) -> str:
        return str(c).replace("|", "\\|")

    out = ["| " + " | ".join(map(cell, head)) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(out)


def _short_summary(rec: dict) -> Table:
    head, rows = summary_table(rec)
    keep = ("size on disk", "compression ratio", "test perplexity")
    return head, [r for i, r in enumerate(rows) if r[0] in keep or i in (2, 3)  # score, drop
                  or r[0].startswith(("latency batch", "next-token agreement"))
                  and not r[0].endswith("p95")]


def render_markdown(data: RunData, report: dict, html_path: str | None = None) -> str:
    """The CI-comment summary of a run.

    Example:
        >>> d = load_run("runs/r1")  # doctest: +SKIP
        >>> "worst class" in render_markdown(d, build_report(d), "runs/r1/report.html")  # doctest: +SKIP
        True
    """
    run = data.run
    recipe = (run.get("recipe") or {}).get("name")
    lines = [f"### netpress: {run.get('model', '?')} on {run.get('data', '?')}"
             + (f" — recipe `{recipe}`" if recipe else "") + f" ({data.kind})", ""]
    if data.record is not None:
        lines += [table_md(_short_summary(data.record)), ""]
    elif report.get("best"):
        b = report["best"]
        lines += [f"Best trial {b.get('number')}: validation accuracy "
                  f"{num(b.get('val_accuracy'), 2, '%', 100)}, drop "
                  f"{num(b.get('accuracy_drop_pp'), 2, ' pp')}, size "
                  f"{num(b.get('size_bytes'), 0, ' B')}, latency "
                  f"{num(b.get('latency_ms'), 3, ' ms')}.", ""]
    else:
        lines += [f"_{data.note('record.json')}_", ""]
    facts = []
    if report.get("budgets"):
        facts.append("budgets: " + ", ".join(f"{k}={v}" for k, v in report["budgets"].items()))
    if "trials" in report:
        t = report["trials"]
        facts.append(f"{t['total']} trials, {t['feasible']} meet every budget, "
                     f"{len(report.get('pareto') or [])} on the Pareto front")
    for i, s in enumerate(run.get("stages") or [], 1):
        chk = s.get("check")
        if isinstance(chk, dict):
            facts.append(f"stage {i} {s.get('technique')}: drop ≤ {chk.get('max_drop_pp')} pp "
                         f"{'passed' if chk.get('passed') else 'failed'}")
    b = data.behaviour
    if b:
        if "max_class_drop_pp" in b:
            facts.append(f"worst class: {b.get('worst_class')} "
                         f"({num(b['max_class_drop_pp'], 2, ' pp')} drop)")
        if "ece" in b:
            facts.append(f"ECE {num(b['ece'], 4)} (baseline {num(b.get('baseline_ece'), 4)})")
        if b.get("agreement") is not None:
            facts.append(f"agreement with baseline {num(b['agreement'], 2, '%', 100)}, "
                         f"KL {num(b.get('kl', b.get('mean_kl')), 4)} nats")
        if b.get("next_token_agreement") is not None:
            facts.append(f"next-token agreement with baseline "
                         f"{num(b['next_token_agreement'], 2, '%', 100)}")
    lines += [f"- {f}" for f in facts]
    head, rows = behaviour_table(b) if b else ([], [])
    rob = [r for r in rows if r[0].startswith(ROBUSTNESS)]
    if rob:
        name = b.get("score_name")
        what = "accuracy" if name in (None, "accuracy") else score_label(name)
        lines += ["", f"Robustness (test {what}):", "", table_md((head, rob))]
    elif not b:
        lines += [f"- _{data.note('behaviour.json')}_"]
    if html_path:
        lines += ["", f"Full report: `{html_path}`"]
    return "\n".join(lines) + "\n"

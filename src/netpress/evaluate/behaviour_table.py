"""Rich tables for the dict of ``netpress.evaluate.behaviour.behaviour``."""

from __future__ import annotations

import math

from rich.table import Table


def _pct(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


def _pp(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:+.2f} pp"


def _change(base: float | None, new: float | None) -> str:
    if base is None or new is None:
        return "—"
    return _pp(100.0 * (new - base))


def behaviour_table(b: dict) -> Table:
    """Baseline vs compressed, one row per measure (accuracy, ECE, noise, FGSM, largest
    class drop, agreement, KL); "change" is compressed minus baseline in percentage points.

    Example:
        >>> b = {"accuracy": 0.9, "baseline_accuracy": 0.91, "ece": 0.02, "baseline_ece": 0.03,
        ...      "noise": [{"sigma": 0.1, "accuracy": 0.8, "baseline_accuracy": 0.85}],
        ...      "fgsm": [{"eps": 0.02, "accuracy": 0.5, "baseline_accuracy": 0.6}],
        ...      "agreement": 0.97, "kl": 0.01, "examples": 10}
        >>> behaviour_table(b).row_count
        6
    """
    t = Table(title=f"behaviour on {b.get('examples', '?')} test examples")
    t.add_column("measure")
    t.add_column("baseline", justify="right")
    t.add_column("compressed", justify="right")
    t.add_column("change", justify="right")
    t.add_row("accuracy", _pct(b["baseline_accuracy"]), _pct(b["accuracy"]),
              _change(b["baseline_accuracy"], b["accuracy"]))
    t.add_row("ECE (lower is better)", _pct(b["baseline_ece"]), _pct(b["ece"]),
              _change(b["baseline_ece"], b["ece"]))
    for r in b.get("noise", []):
        t.add_row(f"accuracy, noise σ={r['sigma']:g}", _pct(r["baseline_accuracy"]),
                  _pct(r["accuracy"]), _change(r["baseline_accuracy"], r["accuracy"]))
    for r in b.get("fgsm", []):
        t.add_row(f"accuracy, FGSM ε={r['eps']:g}", _pct(r["baseline_accuracy"]),
                  _pct(r["accuracy"]), _change(r["baseline_accuracy"], r["accuracy"]))
    if b.get("max_class_drop_pp") is not None:
        t.add_row("largest class drop", "", f"{b['max_class_drop_pp']:.2f} pp",
                  f"class {b['worst_class']}" if b.get("worst_class") is not None else "")
    t.add_row("agreement with baseline", "", _pct(b["agreement"]), "")
    t.add_row("KL(baseline ‖ compressed)", "", f"{b['kl']:.4f} nats", "")
    return t


def per_class_table(b: dict) -> Table:
    """Per-class accuracy of both models and the drop; the worst class is marked.

    Example:
        >>> b = {"per_class": {"names": ["a", "b"], "accuracy": [0.5, 1.0],
        ...      "baseline": [0.75, 1.0], "drop_pp": [25.0, 0.0]}, "worst_class": "a"}
        >>> per_class_table(b).row_count
        2
    """
    pc = b["per_class"]
    t = Table(title="per-class accuracy (test)")
    t.add_column("class")
    t.add_column("baseline", justify="right")
    t.add_column("compressed", justify="right")
    t.add_column("drop", justify="right")
    for name, acc, base, drop in zip(pc["names"], pc["accuracy"], pc["baseline"], pc["drop_pp"],
                                     strict=True):
        mark = " ◀ largest" if name == b.get("worst_class") else ""
        drop_s = "—" if drop is None or math.isnan(drop) else f"{drop:.2f} pp"
        t.add_row(str(name), _pct(base), _pct(acc), drop_s + mark)
    return t

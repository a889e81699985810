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


# key of a robustness list, its level's key, how a row names it
ROBUSTNESS = (("noise", "sigma", "noise σ"), ("fgsm", "eps", "FGSM ε"),
              ("token_dropout", "rate", "token dropout"), ("token_swap", "rate", "token swaps"),
              ("fgsm_embedding", "eps", "embedding FGSM ε"))


def _rows(b: dict, what: str) -> list[tuple[str, str, str, str]]:
    out = []
    for key, param, label in ROBUSTNESS:
        for r in b.get(key) or []:
            if isinstance(r, dict) and param in r:
                sep = "=" if label.endswith(("σ", "ε")) else " "
                out.append((f"{what}, {label}{sep}{r[param]:g}", _pct(r.get("baseline_accuracy")),
                            _pct(r.get("accuracy")), _change(r.get("baseline_accuracy"),
                                                             r.get("accuracy"))))
    return out


def behaviour_table(b: dict) -> Table:
    """Baseline vs compressed, one row per measure: the task's score, ECE, robustness
    (pixel noise and FGSM for images; token dropout, token swaps and FGSM on the embeddings
    for text), largest class drop, agreement, KL; "change" is compressed minus baseline in
    percentage points. Measures a record lacks are left out.

    Example:
        >>> b = {"accuracy": 0.9, "baseline_accuracy": 0.91, "ece": 0.02, "baseline_ece": 0.03,
        ...      "noise": [{"sigma": 0.1, "accuracy": 0.8, "baseline_accuracy": 0.85}],
        ...      "fgsm": [{"eps": 0.02, "accuracy": 0.5, "baseline_accuracy": 0.6}],
        ...      "agreement": 0.97, "kl": 0.01, "examples": 10}
        >>> behaviour_table(b).row_count
        6
    """
    from ..tasks.base import score_label

    name = b.get("score_name")
    t = Table(title=f"behaviour on {b.get('examples', '?')} test examples")
    t.add_column("measure")
    t.add_column("baseline", justify="right")
    t.add_column("compressed", justify="right")
    t.add_column("change", justify="right")
    what = "accuracy" if name in (None, "accuracy") else score_label(name)
    t.add_row(what, _pct(b["baseline_accuracy"]), _pct(b["accuracy"]),
              _change(b["baseline_accuracy"], b["accuracy"]))
    if "ece" in b:
        t.add_row("ECE (lower is better)", _pct(b.get("baseline_ece")), _pct(b["ece"]),
                  _change(b.get("baseline_ece"), b["ece"]))
    for row in _rows(b, what):
        t.add_row(*row)
    if b.get("max_class_drop_pp") is not None:
        t.add_row("largest class drop", "", f"{b['max_class_drop_pp']:.2f} pp",
                  f"class {b['worst_class']}" if b.get("worst_class") is not None else "")
    for key, label in (("agreement", "agreement with baseline"),
                       ("next_token_agreement", "next-token agreement with baseline")):
        if b.get(key) is not None:
            t.add_row(label, "", _pct(b[key]), "")
    kl = b.get("kl", b.get("mean_kl"))
    if kl is not None:
        t.add_row("KL(baseline ‖ compressed)", "", f"{kl:.4f} nats", "")
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

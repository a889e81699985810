"""The report's tables as plain rows of strings, shared by the HTML and Markdown writers.

Each function returns ``(header, rows)``; a renderer only lays them out.
"""

from __future__ import annotations

from .data import num
from .points import batch1, settings_text

Table = tuple[list[str], list[list[str]]]


def _pct(x) -> str:
    return num(x, 2, "%", 100)


def _pp(x) -> str:
    return num(x, 2, " pp")


def _ms(x) -> str:
    return num(x, 3, " ms")


def _b(x) -> str:
    return num(x, 0, " B")


def summary_table(rec: dict) -> Table:
    """Before/after: size, ratio, accuracy, drop, latency at batch 1 and N, counts, threads.

    Example:
        >>> h, rows = summary_table({"size_bytes": 10, "baseline_size_bytes": 40,
        ...                          "compression_ratio": 4.0})
        >>> rows[0], rows[1]
        (['size on disk', '10 B', '40 B'], ['compression ratio', '4.00×', ''])
    """
    lat, blat = rec.get("latency_ms") or {}, rec.get("baseline_latency_ms") or {}
    n = lat.get("batch_n", blat.get("batch_n", "N"))
    rows = [
        ["size on disk", _b(rec.get("size_bytes")), _b(rec.get("baseline_size_bytes"))],
        ["compression ratio", num(rec.get("compression_ratio"), 2, "×"), ""],
        ["test top-1 accuracy", _pct(rec.get("accuracy")), _pct(rec.get("baseline_accuracy"))],
        ["accuracy drop", _pp(rec.get("accuracy_drop_pp")), ""],
        ["latency batch 1 p50", _ms(lat.get("batch1_p50")), _ms(blat.get("batch1_p50"))],
        ["latency batch 1 p95", _ms(lat.get("batch1_p95")), _ms(blat.get("batch1_p95"))],
        [f"latency batch {n} p50", _ms(lat.get("batchN_p50")), _ms(blat.get("batchN_p50"))],
        ["parameters (count)", num(rec.get("params"), 0), ""],
        ["nonzero parameters (count)", num(rec.get("nonzero_params"), 0), ""],
        ["MACs per example (count)", num(rec.get("macs"), 0), ""],
        ["threads", num(rec.get("threads"), 0), num(rec.get("threads"), 0)],
    ]
    if "agreement" in rec:
        rows.append(["top-1 agreement with baseline", _pct(rec.get("agreement")), ""])
    return ["figure", "compressed", "baseline"], rows


def stages_table(stages: list[dict], baseline_val: float | None = None) -> Table:
    """One row per stage: technique, seconds, validation accuracy after it, its check.

    Example:
        >>> stages_table([{"technique": "MagnitudePrune", "seconds": 1.5, "val_accuracy": 0.9,
        ...                "check": {"max_drop_pp": 1.0, "passed": True}}])[1][0]
        ['1', 'MagnitudePrune', '1.5', '90.00%', 'drop ≤ 1 pp: passed']
    """
    rows = []
    if baseline_val is not None:
        rows.append(["0", "baseline", "", _pct(baseline_val), ""])
    for i, s in enumerate(stages, 1):
        chk = s.get("check")
        if isinstance(chk, dict):
            verdict = "passed" if chk.get("passed") else "FAILED"
            limit = chk.get("max_drop_pp")
            limit_s = f"{limit:g}" if isinstance(limit, int | float) else "?"
            chk_s = f"drop ≤ {limit_s} pp: {verdict}"
        else:
            chk_s = "–"
        rows.append([str(i), str(s.get("technique")), num(s.get("seconds"), 1),
                     _pct(s.get("val_accuracy")), chk_s])
    return ["#", "technique", "seconds", "val accuracy after", "check"], rows


def behaviour_table(b: dict) -> Table:
    """Whole-model behaviour: accuracy, worst class, ECE, noise, FGSM, agreement, KL.

    Example:
        >>> behaviour_table({"accuracy": 0.9, "baseline_accuracy": 0.92})[1][0]
        ['test top-1 accuracy', '90.00%', '92.00%']
    """
    rows = [["test top-1 accuracy", _pct(b.get("accuracy")), _pct(b.get("baseline_accuracy"))]]
    if "max_class_drop_pp" in b:
        rows.append(["largest per-class drop", f"{_pp(b['max_class_drop_pp'])} "
                     f"(class {b.get('worst_class', '?')})", ""])
    if "ece" in b:
        rows.append(["expected calibration error", num(b["ece"], 4), num(b.get("baseline_ece"), 4)])
    for r in b.get("noise") or []:
        rows.append([f"Gaussian noise σ={r.get('sigma')}", _pct(r.get("accuracy")),
                     _pct(r.get("baseline_accuracy"))])
    for r in b.get("fgsm") or []:
        rows.append([f"FGSM ε={r.get('eps')}", _pct(r.get("accuracy")),
                     _pct(r.get("baseline_accuracy"))])
    if "agreement" in b:
        rows.append(["top-1 agreement with baseline", _pct(b["agreement"]), ""])
    if "kl" in b:
        rows.append(["mean KL(baseline ‖ compressed)", num(b["kl"], 4, " nats"), ""])
    return ["figure", "compressed", "baseline"], rows


def per_class_table(b: dict) -> Table:
    """Per-class accuracy, baseline and drop (pp), largest drop first.

    Example:
        >>> per_class_table({"per_class": {"names": ["a", "b"], "accuracy": [0.9, 0.5],
        ...     "baseline": [0.9, 0.7], "drop_pp": [0.0, 20.0]}})[1][0]
        ['b', '50.00%', '70.00%', '20.00 pp']
    """
    pc = b.get("per_class") or {}
    names = pc.get("names") or [str(i) for i in range(len(pc.get("accuracy") or []))]
    acc, base, drop = pc.get("accuracy") or [], pc.get("baseline") or [], pc.get("drop_pp") or []
    rows = []
    for i, name in enumerate(names):
        d = drop[i] if i < len(drop) else None
        rows.append((d if isinstance(d, int | float) else float("-inf"),
                     [str(name), _pct(acc[i] if i < len(acc) else None),
                      _pct(base[i] if i < len(base) else None), _pp(d)]))
    rows.sort(key=lambda r: -r[0])
    return ["class", "compressed", "baseline", "drop"], [r for _, r in rows]


def compare_table(compare: dict) -> Table:
    """The per-technique comparison of ``compare.json``, in its order.

    Example:
        >>> compare_table({"rows": [{"technique": "MagnitudePrune", "settings": {"sparsity": 0.9},
        ...     "size_bytes": 100, "compression_ratio": 10.0, "accuracy": 0.9,
        ...     "accuracy_drop_pp": 0.5, "latency_ms": 0.2}]})[1][0][:2]
        ['MagnitudePrune', 'sparsity=0.9']
    """
    rows = []
    for r in compare.get("rows", []):
        rows.append([str(r.get("technique")), settings_text(r.get("settings")),
                     _b(r.get("size_bytes")), num(r.get("compression_ratio"), 2, "×"),
                     _pct(r.get("accuracy")), _pp(r.get("accuracy_drop_pp")),
                     _ms(batch1(r.get("latency_ms")))])
    return ["technique", "settings", "size", "ratio", "accuracy", "drop", "latency b1"], rows


def pareto_table(points: list[dict], best: int | None = None) -> Table:
    """The trials on the Pareto front (as the search marked them), smallest first.

    Example:
        >>> pareto_table([{"number": 3, "accuracy": 0.9, "accuracy_drop_pp": 0.1,
        ...     "size_bytes": 10, "latency_ms": 0.2, "feasible": True, "pareto": True,
        ...     "settings": "s=1"}], best=3)[1][0][0]
        '3 (best)'
    """
    front = sorted((p for p in points if p.get("pareto")), key=lambda p: p.get("size_bytes") or 0)
    rows = [[f"{p.get('number')}{' (best)' if best is not None and p.get('number') == best else ''}",
             _pct(p.get("accuracy")), _pp(p.get("accuracy_drop_pp")), _b(p.get("size_bytes")),
             _ms(p.get("latency_ms")), "yes" if p.get("feasible") else "no", p.get("settings", "")]
            for p in front]
    return ["trial", "val accuracy", "drop", "size", "latency b1", "meets budgets", "parameters"], rows

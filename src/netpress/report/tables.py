"""The report's tables as plain rows of strings, shared by the HTML and Markdown writers.

Each function returns ``(header, rows)``; a renderer only lays them out.
"""

from __future__ import annotations

from ..tasks.base import score_label
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


def score_cell(x, score_name: str | None = None) -> str:
    """A task's score for a table: a percentage, or 4 decimals for a cosine.

    Example:
        >>> score_cell(0.98765), score_cell(0.98765, "cosine")
        ('98.77%', '0.9877')
    """
    return num(x, 4) if score_name == "cosine" else _pct(x)


def drop_label(score_name: str | None) -> str:
    """The name of a score's drop: "accuracy drop" for classifiers, else "<score> drop".

    Example:
        >>> drop_label(None), drop_label("token_accuracy")
        ('accuracy drop', 'next-token accuracy drop')
    """
    label = score_label(score_name)
    return "accuracy drop" if label == "top-1 accuracy" else f"{label} drop"


def _comparison_rows(rec: dict) -> list[list[str]]:
    """Agreement with the baseline (top-1 or next-token), KL and log-probability change."""
    rows = []
    if rec.get("agreement") is not None:
        rows.append(["top-1 agreement with baseline", _pct(rec.get("agreement")), ""])
    if rec.get("next_token_agreement") is not None:
        rows.append(["next-token agreement with baseline", _pct(rec["next_token_agreement"]), ""])
    if rec.get("mean_abs_logprob_change") is not None:
        rows.append(["mean |Δ log p(next token)|", num(rec["mean_abs_logprob_change"], 4, " nats"),
                     ""])
    return rows


def summary_table(rec: dict) -> Table:
    """Before/after: size, ratio, the task's score and its drop, latency at batch 1 and N,
    counts, threads; perplexity and agreement with the baseline where the record has them.

    Example:
        >>> h, rows = summary_table({"size_bytes": 10, "baseline_size_bytes": 40,
        ...                          "compression_ratio": 4.0})
        >>> rows[0], rows[1], rows[2][0]
        (['size on disk', '10 B', '40 B'], ['compression ratio', '4.00×', ''], 'test top-1 accuracy')
    """
    lat, blat = rec.get("latency_ms") or {}, rec.get("baseline_latency_ms") or {}
    n = lat.get("batch_n", blat.get("batch_n", "N"))
    name = rec.get("score_name")
    rows = [
        ["size on disk", _b(rec.get("size_bytes")), _b(rec.get("baseline_size_bytes"))],
        ["compression ratio", num(rec.get("compression_ratio"), 2, "×"), ""],
        [f"test {score_label(name)}", score_cell(rec.get("accuracy"), name),
         score_cell(rec.get("baseline_accuracy"), name)],
        [drop_label(name), _pp(rec.get("accuracy_drop_pp")), ""],
    ]
    metrics, base = rec.get("metrics") or {}, rec.get("baseline_metrics") or {}
    if "perplexity" in metrics:
        rows.append(["test perplexity", num(metrics["perplexity"], 2),
                     num(base.get("perplexity"), 2)])
    rows += [
        ["latency batch 1 p50", _ms(lat.get("batch1_p50")), _ms(blat.get("batch1_p50"))],
        ["latency batch 1 p95", _ms(lat.get("batch1_p95")), _ms(blat.get("batch1_p95"))],
        [f"latency batch {n} p50", _ms(lat.get("batchN_p50")), _ms(blat.get("batchN_p50"))],
        ["parameters (count)", num(rec.get("params"), 0), ""],
        ["nonzero parameters (count)", num(rec.get("nonzero_params"), 0), ""],
        ["MACs per example (count)", num(rec.get("macs"), 0), ""],
        ["threads", num(rec.get("threads"), 0), num(rec.get("threads"), 0)],
    ]
    rows += _comparison_rows(rec)
    return ["figure", "compressed", "baseline"], rows


def stages_table(stages: list[dict], baseline_val: float | None = None,
                 score_name: str | None = None) -> Table:
    """One row per stage: technique, seconds, the task's validation score after it, its check.

    Example:
        >>> stages_table([{"technique": "MagnitudePrune", "seconds": 1.5, "val_accuracy": 0.9,
        ...                "check": {"max_drop_pp": 1.0, "passed": True}}])[1][0]
        ['1', 'MagnitudePrune', '1.5', '90.00%', 'drop ≤ 1 pp: passed']
    """
    rows = []
    if baseline_val is not None:
        rows.append(["0", "baseline", "", score_cell(baseline_val, score_name), ""])
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
                     score_cell(s.get("val_accuracy"), score_name), chk_s])
    label = "accuracy" if score_name in (None, "accuracy") else score_label(score_name)
    return ["#", "technique", "seconds", f"val {label} after", "check"], rows


def _rate_rows(b: dict, key: str, what: str, param: str, name: str | None) -> list[list[str]]:
    return [[f"{what} {param}={r.get(param)}", score_cell(r.get("accuracy"), name),
             score_cell(r.get("baseline_accuracy"), name)]
            for r in b.get(key) or [] if isinstance(r, dict)]


def behaviour_table(b: dict) -> Table:
    """Whole-model behaviour: the task's score, worst class, ECE, robustness (pixel noise
    and FGSM for images; token dropout, token swaps and FGSM on the embeddings for text),
    agreement, KL.

    Example:
        >>> behaviour_table({"accuracy": 0.9, "baseline_accuracy": 0.92})[1][0]
        ['test top-1 accuracy', '90.00%', '92.00%']
    """
    name = b.get("score_name")
    rows = [[f"test {score_label(name)}", score_cell(b.get("accuracy"), name),
             score_cell(b.get("baseline_accuracy"), name)]]
    if b.get("max_class_drop_pp") is not None:
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
    rows += _rate_rows(b, "token_dropout", "token dropout", "rate", name)
    rows += _rate_rows(b, "token_swap", "token swaps", "rate", name)
    rows += _rate_rows(b, "fgsm_embedding", "embedding FGSM", "eps", name)
    rows += _comparison_rows(b)
    kl = b.get("kl", b.get("mean_kl"))
    if kl is not None:
        rows.append(["mean KL(baseline ‖ compressed)", num(kl, 4, " nats"), ""])
    if b.get("cosine") is not None and name != "cosine":
        rows.append(["cosine to baseline", num(b["cosine"], 4), ""])
    return ["figure", "compressed", "baseline"], rows


ROBUSTNESS = ("Gaussian", "FGSM", "token dropout", "token swaps", "embedding FGSM")


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

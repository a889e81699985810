"""The points of the accuracy/size/latency trade-off plots and their Pareto front.

A search run gives one point per trial (``trials.json``); a compress run gives the
baseline and the compressed model (``record.json``) plus one point per technique of
``compare.json`` when it is there. Each point is a dict with ``label``, ``group``
(``baseline``, ``compressed``, ``technique``, ``trial``), ``accuracy`` (0..1),
``size_bytes``, ``latency_ms`` (batch-1 median), ``feasible`` and ``pareto``.
"""

from __future__ import annotations

import math

from .data import RunData


def batch1(lat) -> float | None:
    """The batch-1 median of a latency entry (a number or a DESIGN latency dict).

    Example:
        >>> batch1({"batch1_p50": 0.2, "batch1_p95": 0.3}), batch1(1.5), batch1(None)
        (0.2, 1.5, None)
    """
    if isinstance(lat, dict):
        lat = lat.get("batch1_p50")
    if isinstance(lat, int | float) and not isinstance(lat, bool) and math.isfinite(lat):
        return float(lat)
    return None


def pareto_indices(xs: list[float | None], ys: list[float | None]) -> list[int]:
    """Indices of the points no other point beats (smaller or equal x and larger or
    equal y, one strictly), sorted by x. Points with a missing coordinate are skipped.

    Example:
        >>> pareto_indices([1, 2, 3, 2], [0.5, 0.9, 0.95, 0.8])
        [0, 1, 2]
    """
    ok = [i for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if x is not None and y is not None]
    front = []
    for i in ok:
        beaten = any((xs[j] <= xs[i] and ys[j] >= ys[i]) and (xs[j] < xs[i] or ys[j] > ys[i])
                     for j in ok)
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: (xs[i], -ys[i]))


def settings_text(s) -> str:
    """Technique settings or trial parameters as ``k=v, …`` (keys starting with _ left out).

    Example:
        >>> settings_text({"sparsity": 0.9, "_type": "MagnitudePrune"})
        'sparsity=0.9'
    """
    if isinstance(s, dict):
        return ", ".join(f"{k}={v}" for k, v in s.items() if not str(k).startswith("_"))
    return "" if s is None else str(s)


def trial_points(trials: dict) -> list[dict]:
    """One point per finished trial of ``trials.json`` (validation accuracy).

    Example:
        >>> trial_points({"trials": [{"number": 0, "val_accuracy": 0.9, "size_bytes": 10,
        ...     "latency_ms": 0.1, "feasible": True, "pareto": True}]})[0]["label"]
        'trial 0'
    """
    out = []
    best = trials.get("best")
    for t in trials.get("trials", []):
        if not isinstance(t, dict) or t.get("val_accuracy") is None:
            continue
        out.append({"label": f"trial {t.get('number')}", "group": "trial",
                    "number": t.get("number"), "accuracy": float(t["val_accuracy"]),
                    "accuracy_drop_pp": t.get("accuracy_drop_pp"),
                    "size_bytes": t.get("size_bytes"), "latency_ms": batch1(t.get("latency_ms")),
                    "feasible": bool(t.get("feasible")), "pareto": bool(t.get("pareto")),
                    "best": best is not None and t.get("number") == best,
                    "settings": settings_text(t.get("params"))})
    return out


def compress_points(record: dict | None, compare: dict | None) -> list[dict]:
    """Baseline and compressed model of ``record.json`` plus ``compare.json`` rows
    (test accuracy); ``pareto`` marks the size/accuracy front.

    Example:
        >>> pts = compress_points({"accuracy": 0.9, "baseline_accuracy": 0.91, "size_bytes": 10,
        ...     "baseline_size_bytes": 100}, None)
        >>> [(p["label"], p["pareto"]) for p in pts]
        [('baseline', True), ('compressed', True)]
    """
    pts = []
    if record:
        pts.append({"label": "baseline", "group": "baseline",
                    "accuracy": record.get("baseline_accuracy"),
                    "size_bytes": record.get("baseline_size_bytes"),
                    "latency_ms": batch1(record.get("baseline_latency_ms")), "feasible": True})
        pts.append({"label": "compressed", "group": "compressed", "accuracy": record.get("accuracy"),
                    "size_bytes": record.get("size_bytes"),
                    "latency_ms": batch1(record.get("latency_ms")), "feasible": True})
    for row in (compare or {}).get("rows", []):
        if isinstance(row, dict):
            pts.append({"label": str(row.get("technique")), "group": "technique",
                        "accuracy": row.get("accuracy"), "size_bytes": row.get("size_bytes"),
                        "latency_ms": batch1(row.get("latency_ms")), "feasible": True,
                        "settings": settings_text(row.get("settings"))})
    front = set(pareto_indices([p["size_bytes"] for p in pts], [p["accuracy"] for p in pts]))
    for i, p in enumerate(pts):
        p["pareto"] = i in front
    return pts


def run_points(data: RunData) -> list[dict]:
    """The trade-off points of a run (trials for a search, models for a compress).

    Example:
        >>> len(run_points(load_run("runs/r1")))  # doctest: +SKIP
        7
    """
    if data.kind == "search" and data.trials:
        return trial_points(data.trials)
    return compress_points(data.record, data.compare)


def budget_limits(data: RunData) -> dict:
    """Budgets of a search as plot limits: ``min_accuracy`` (0..1), ``max_size_bytes``,
    ``max_latency_ms``; only those the run set.

    Example:
        >>> d = RunData(Path("r"), {"baseline_val_accuracy": 0.9},
        ...             trials={"budgets": {"max_acc_drop": 0.5, "max_size_kb": 20}})
        >>> budget_limits(d)
        {'min_accuracy': 0.895, 'max_size_bytes': 20480.0}
    """
    b = (data.trials or {}).get("budgets") or {}
    out: dict = {}
    drop = b.get("max_acc_drop_pp", b.get("max_acc_drop"))
    base = data.run.get("baseline_val_accuracy")
    if base is None:
        for t in (data.trials or {}).get("trials", []):
            if t.get("val_accuracy") is not None and t.get("accuracy_drop_pp") is not None:
                base = t["val_accuracy"] + t["accuracy_drop_pp"] / 100
                break
    if drop is not None and base is not None:
        out["min_accuracy"] = round(base - drop / 100, 10)
    if b.get("max_size_bytes") is not None:
        out["max_size_bytes"] = float(b["max_size_bytes"])
    elif b.get("max_size_kb") is not None:
        out["max_size_bytes"] = float(b["max_size_kb"]) * 1024
    if b.get("max_latency_ms") is not None:
        out["max_latency_ms"] = float(b["max_latency_ms"])
    return out

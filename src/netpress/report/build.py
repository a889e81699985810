"""``report.json``: what ``netpress gate`` and other machines read from a run.

It is record.json (the DESIGN measurement record, shared keys at the top level) plus
``behaviour``, ``stages``, ``run`` (run.json without its stages), ``compare`` rows and,
for a search, ``pareto`` (the trials on the front) and ``best`` (the chosen trial).
A search run without a record.json takes its gate keys from the best trial.
"""

from __future__ import annotations

from pathlib import Path

from .data import RunData, load_run
from .points import run_points

REPORT_VERSION = 1


def _best_trial(trials: dict) -> dict | None:
    best = trials.get("best")
    for t in trials.get("trials", []):
        if best is not None and t.get("number") == best:
            return t
    return None


def _gate_keys_from_trial(t: dict, trials: dict) -> dict:
    out = {"accuracy": t.get("val_accuracy"), "accuracy_drop_pp": t.get("accuracy_drop_pp"),
           "size_bytes": t.get("size_bytes"), "gate_source": f"best trial {t.get('number')} "
                                                             "(validation data)"}
    lat = t.get("latency_ms")
    out["latency_ms"] = lat if isinstance(lat, dict) else {"batch1_p50": lat}
    base = trials.get("baseline_size_bytes")
    if base and t.get("size_bytes"):
        out["baseline_size_bytes"] = base
        out["compression_ratio"] = base / t["size_bytes"]
    return out


def build_report(run: str | Path | RunData) -> dict:
    """The content of ``report.json`` for a run folder (or an already loaded RunData).

    Example:
        >>> rep = build_report("runs/r1")  # doctest: +SKIP
        >>> rep["accuracy_drop_pp"], rep["behaviour"]["worst_class"]  # doctest: +SKIP
        (0.29, 'Shirt')
    """
    data = run if isinstance(run, RunData) else load_run(run)
    rep: dict = dict(data.record or {})
    stages = data.run.get("stages") or rep.get("stages") or []
    summary = {k: v for k, v in data.run.items() if k != "stages"}
    summary["run_dir"] = str(data.run_dir)
    rep.update({"report_version": REPORT_VERSION, "kind": data.kind, "run": summary,
                "stages": stages, "behaviour": data.behaviour})
    b = data.behaviour or {}
    for key in ("max_class_drop_pp", "worst_class", "ece", "baseline_ece"):
        if key in b:
            rep.setdefault(key, b[key])
    if data.compare:
        rep["compare"] = data.compare.get("rows", [])
    if data.kind == "search" and data.trials:
        pts = run_points(data)
        rep["pareto"] = [t for t in data.trials.get("trials", []) if t.get("pareto")]
        rep["best"] = _best_trial(data.trials)
        rep["budgets"] = data.trials.get("budgets", {})
        rep["trials"] = {"total": len(data.trials.get("trials", [])),
                         "feasible": sum(1 for p in pts if p["feasible"])}
        if data.record is None and rep["best"] is not None:
            rep.update(_gate_keys_from_trial(rep["best"], data.trials))
    rep["missing"] = {name: data.note(name) for name in sorted(data.problems)}
    return rep

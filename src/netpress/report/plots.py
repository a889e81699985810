"""The report's plots as PNG bytes (matplotlib, Agg backend, nothing written to HOME).

``make_plots(data)`` draws every plot the run folder has data for; each function
below draws one and can be used alone.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile

from ..tasks.base import score_label
from .data import RunData
from .points import budget_limits, pareto_indices, run_points

if not os.environ.get("MPLCONFIGDIR"):  # matplotlib would otherwise cache fonts in HOME
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="netpress-mpl-")
    atexit.register(shutil.rmtree, os.environ["MPLCONFIGDIR"], ignore_errors=True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"baseline": ("#555555", "s"), "compressed": ("#d62728", "*"),
         "technique": ("#1f77b4", "o"), "trial": ("#1f77b4", "o")}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def tradeoff_png(points: list[dict], axis: str = "size", limits: dict | None = None,
                 accuracy_label: str = "top-1 accuracy (%)") -> bytes:
    """Accuracy against artifact size (``axis="size"``, KiB, log scale) or batch-1
    latency (``axis="latency"``, ms): feasible and infeasible points, the Pareto front
    of this plane as a line, points the run marked Pareto ringed, the best candidate as a
    star, budget lines dashed.

    Example:
        >>> png = tradeoff_png([{"label": "a", "group": "trial", "accuracy": 0.9,
        ...     "size_bytes": 2048, "latency_ms": 0.1, "feasible": True, "pareto": True}])
        >>> png[:4]
        b'\\x89PNG'
    """
    key = "size_bytes" if axis == "size" else "latency_ms"
    scale = 1 / 1024 if axis == "size" else 1.0
    lim = limits or {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    pts = [p for p in points if p.get(key) is not None and p.get("accuracy") is not None]
    groups: dict[tuple, list[dict]] = {}
    for p in pts:
        feasible = p.get("feasible", True)
        name = p["group"] if p["group"] != "trial" else ("feasible" if feasible else "infeasible")
        groups.setdefault((name, p["group"], feasible), []).append(p)
    for (name, group, feasible), ps in groups.items():
        color, marker = STYLE.get(group, ("#1f77b4", "o"))
        if not feasible:
            color, marker = "#bbbbbb", "x"
        ax.scatter([p[key] * scale for p in ps], [p["accuracy"] * 100 for p in ps], c=color,
                   marker=marker, s=80 if marker == "*" else 30, label=name, zorder=3)
        if group == "technique":
            for p in ps:
                ax.annotate(p["label"], (p[key] * scale, p["accuracy"] * 100), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
    front = pareto_indices([p[key] for p in pts], [p["accuracy"] for p in pts])
    if front:
        ax.step([pts[i][key] * scale for i in front], [pts[i]["accuracy"] * 100 for i in front],
                where="post", color="#ff7f0e", linewidth=1.5, label="Pareto front", zorder=2)
    marked = [p for p in pts if p.get("pareto") and p["group"] == "trial"]
    if marked:
        ax.scatter([p[key] * scale for p in marked], [p["accuracy"] * 100 for p in marked],
                   facecolors="none", edgecolors="#ff7f0e", s=110, linewidths=1.5,
                   label="on the search's front", zorder=4)
    best = [p for p in pts if p.get("best")]
    if best:
        ax.scatter([p[key] * scale for p in best], [p["accuracy"] * 100 for p in best], c="#d62728",
                   marker="*", s=160, label=f"best ({best[0]['label']})", zorder=5)
    if "min_accuracy" in lim:
        ax.axhline(lim["min_accuracy"] * 100, color="#2ca02c", linestyle="--", linewidth=1,
                   label="accuracy budget")
    xlim = lim.get("max_size_bytes") if axis == "size" else lim.get("max_latency_ms")
    if xlim is not None:
        ax.axvline(xlim * scale, color="#9467bd", linestyle="--", linewidth=1,
                   label=f"{axis} budget")
    if axis == "size" and pts:
        ax.set_xscale("log")
    ax.set_xlabel("artifact size (KiB)" if axis == "size" else "latency, batch 1 p50 (ms)")
    ax.set_ylabel(accuracy_label)
    ax.set_title(f"accuracy vs {'size' if axis == 'size' else 'latency'}")
    ax.grid(alpha=0.3)
    if pts:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return _png(fig)


FORM_STYLE = {"fp32": ("#555555", "s"), "int8": ("#1f77b4", "o"),
              "int8-float-layers": ("#17becf", "D"), "w4": ("#2ca02c", "^")}


def speedup_png(trials: dict, score_label_text: str = "validation score") -> bytes:
    """A deploy search's trials (``trials.json`` with ``speedup`` per batch size): the
    task's score against the speed-up over the uncompressed model in torch eager, one panel
    per batch size; colour and marker by deployed form, the front of (score, speed-up)
    as a line, the best trial starred, ``peers`` (other toolkits' points, each with its
    source) as labelled black crosses, budget lines dashed.

    Example:
        >>> png = speedup_png({"trials": [{"number": 0, "params": {"form": "int8"},
        ...     "val_accuracy": 0.99, "speedup": {"b1": 3.0}}], "best": 0})
        >>> png[:4]
        b'\x89PNG'
    """
    recs = [t for t in trials.get("trials", []) if isinstance(t, dict) and t.get("speedup")]
    sizes = sorted({b for t in recs for b in t["speedup"]}, key=lambda b: int(b[1:]))
    peers = [p for p in trials.get("peers", []) if isinstance(p, dict)]
    budgets = trials.get("budgets") or {}
    base = trials.get("baseline_val_accuracy")
    fig, axes = plt.subplots(1, max(1, len(sizes)), figsize=(5.2 * max(1, len(sizes)), 4.4),
                             dpi=100, squeeze=False)
    for ax, b in zip(axes[0], sizes or ["b1"], strict=False):
        pts = [(t["speedup"][b], t["val_accuracy"], t) for t in recs if b in t["speedup"]]
        for form, (color, marker) in FORM_STYLE.items():
            ps = [(x, y) for x, y, t in pts if t["params"].get("form") == form]
            if ps:
                ax.scatter([x for x, _ in ps], [y for _, y in ps], c=color, marker=marker, s=36,
                           label=form, zorder=3)
        front = pareto_indices([-x for x, _, _ in pts], [y for _, y, _ in pts])
        if front:
            fr = sorted((pts[i][0], pts[i][1]) for i in front)
            ax.plot([x for x, _ in fr], [y for _, y in fr], color="#ff7f0e", linewidth=1.2,
                    label="Pareto front", zorder=2)
        best = [(x, y) for x, y, t in pts if t.get("number") == trials.get("best")]
        if best:
            ax.scatter(*zip(*best, strict=True), c="#d62728", marker="*", s=180,
                       label="best", zorder=5)
        for p in peers:
            x, y = (p.get("speedup") or {}).get(b), p.get("score")
            if x is None or y is None:
                continue
            ax.scatter([x], [y], c="black", marker="x", s=40, zorder=4)
            ax.annotate(str(p.get("label")), (x, y), fontsize=7, xytext=(4, -9),
                        textcoords="offset points")
        if base is not None and budgets.get("max_acc_drop_pp") is not None:
            ax.axhline(base - budgets["max_acc_drop_pp"] / 100, color="#2ca02c", linestyle="--",
                       linewidth=1, label="score budget")
        if budgets.get("min_speedup"):
            ax.axvline(budgets["min_speedup"], color="#9467bd", linestyle="--", linewidth=1,
                       label="speed-up budget")
        ax.axvline(1.0, color="#999999", linewidth=0.8)
        ax.set_xlabel(f"speed-up vs fp32 torch eager, batch {b[1:]}")
        ax.set_ylabel(score_label_text)
        ax.set_title(f"fidelity vs speed-up, batch {b[1:]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="lower left")
    if peers:
        fig.text(0.01, 0.01, "×: " + "; ".join(sorted({str(p.get("source")) for p in peers
                                                      if p.get("source")})), fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _png(fig)


def sensitivity_png(sens: dict, label: str = "top-1") -> bytes:
    """Accuracy against sparsity, one line per layer pruned alone (sensitivity.json).

    Example:
        >>> sensitivity_png({"kind": "unstructured", "sparsities": [0, 0.5], "baseline": 0.9,
        ...                  "layers": {"1": [0.9, 0.85]}})[:4]
        b'\\x89PNG'
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    xs = [s * 100 for s in sens["sparsities"]]
    for name, accs in sens["layers"].items():
        ax.plot(xs, [a * 100 for a in accs], marker="o", label=name)
    if sens.get("baseline") is not None:
        ax.axhline(sens["baseline"] * 100, color="grey", linestyle="--", linewidth=1,
                   label="unpruned")
    unit = "channels" if sens.get("kind") == "structured" else "weights"
    ax.set_xlabel(f"{unit} removed from the layer alone (%)")
    ax.set_ylabel(f"validation {label} (%)")
    sampled = sens.get("sampled")
    ax.set_title(f"per-layer {sens.get('kind', '')} sensitivity"
                 + (f" ({sampled['layers_swept']} of {sampled['layers_total']} layers)"
                    if isinstance(sampled, dict) and "layers_swept" in sampled else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _png(fig)


def histograms_png(hist: dict) -> bytes:
    """Weight histograms per layer, before (grey) and after (red) compression, log counts.

    Example:
        >>> histograms_png({"layers": {"1": {"edges": [-1, 0, 1], "before": [3, 4],
        ...                                  "after": [1, 5]}}})[:4]
        b'\\x89PNG'
    """
    layers = list(hist["layers"].items())
    cols = min(3, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    for ax, (name, h) in zip(axes.flat, layers, strict=False):
        edges = h["edges"]
        ax.stairs(h["before"], edges, fill=True, color="#999999", alpha=0.6, label="before")
        ax.stairs(h["after"], edges, color="#d62728", linewidth=1.2, label="after")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("weight value", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].set_ylabel("count")
    axes.flat[0].legend(fontsize="x-small")
    fig.suptitle("weight histograms before / after")
    fig.tight_layout()
    return _png(fig)


PARTS = (("value_bytes", "values", "#1f77b4"), ("index_bytes", "indices", "#ff7f0e"),
         ("codebook_bytes", "codebooks", "#2ca02c"), ("raw_bytes", "raw", "#9467bd"))


def size_breakdown_png(layers: list[dict], header_bytes: int = 0, padding_bytes: int = 0) -> bytes:
    """Bytes of the artifact by tensor and part (values, indices, codebooks, raw), plus the
    header (with alignment padding), as horizontal stacked bars.

    Example:
        >>> size_breakdown_png([{"name": "1.weight", "value_bytes": 900, "index_bytes": 400,
        ...                      "codebook_bytes": 64, "raw_bytes": 0}], 300, 4)[:4]
        b'\\x89PNG'
    """
    names = [r["name"] for r in layers] + ["header"]
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.35 * len(names)), dpi=100)
    left = [0.0] * len(names)
    for key, label, color in PARTS:
        vals = [float(r.get(key) or 0) for r in layers] + [0.0]
        if any(vals):
            ax.barh(names, vals, left=left, color=color, label=label)
            left = [a + b for a, b in zip(left, vals, strict=True)]
    head = [0.0] * len(layers) + [float(header_bytes + padding_bytes)]
    ax.barh(names, head, left=left, color="#7f7f7f", label="header + padding")
    total = sum(left) + header_bytes + padding_bytes
    ax.invert_yaxis()
    ax.set_xlabel("bytes")
    ax.set_title(f"artifact size breakdown ({int(total):,} bytes)")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def size_parts(data: RunData) -> tuple[list[dict], int, int] | None:
    """Per-tensor rows and header/padding bytes: from record.json, else model.netpress.

    Example:
        >>> size_parts(load_run("runs/r1"))[0][0]["name"]  # doctest: +SKIP
        '1.weight'
    """
    rec = data.record or {}
    if rec.get("artifact_layers"):
        return rec["artifact_layers"], int(rec.get("header_bytes") or 0), \
            int(rec.get("padding_bytes") or 0)
    if data.artifact:
        a = data.artifact
        return a["tensors"], int(a["header_bytes"]), int(a["padding_bytes"])
    return None


def make_plots(data: RunData) -> dict[str, tuple[str, bytes]]:
    """Every plot the run has data for: ``{key: (title, png bytes)}``, in report order.

    Example:
        >>> list(make_plots(load_run("runs/r1")))  # doctest: +SKIP
        ['accuracy_vs_size', 'accuracy_vs_latency', 'sensitivity', 'histograms', 'size_breakdown']
    """
    out: dict[str, tuple[str, bytes]] = {}
    points = run_points(data)
    limits = budget_limits(data)
    name = data.run.get("score_name") or (data.record or {}).get("score_name")
    label = "top-1" if name in (None, "accuracy") else score_label(name)
    acc = f"validation {label} (%)" if data.kind == "search" and data.trials else f"test {label} (%)"
    if any(p.get("size_bytes") is not None and p.get("accuracy") is not None for p in points):
        out["accuracy_vs_size"] = ("Accuracy vs artifact size",
                                   tradeoff_png(points, "size", limits, acc))
    if any(p.get("latency_ms") is not None and p.get("accuracy") is not None for p in points):
        out["accuracy_vs_latency"] = ("Accuracy vs latency",
                                      tradeoff_png(points, "latency", limits, acc))
    if data.trials and any(isinstance(t, dict) and t.get("speedup")
                           for t in data.trials.get("trials", [])):
        out["fidelity_vs_speedup"] = ("Fidelity vs speed-up (deployed forms; × = other "
                                      "toolkits)", speedup_png(data.trials,
                                                               acc.replace(" (%)", "")))
    if data.sensitivity and data.sensitivity["layers"]:
        out["sensitivity"] = ("Per-layer sensitivity", sensitivity_png(data.sensitivity, label))
    if data.histograms and data.histograms["layers"]:
        out["histograms"] = ("Weight histograms before / after", histograms_png(data.histograms))
    parts = size_parts(data)
    if parts and parts[0]:
        out["size_breakdown"] = ("Artifact size breakdown", size_breakdown_png(*parts))
    return out

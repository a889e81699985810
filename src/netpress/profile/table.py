"""Readable tables of measurement records, for people (the JSON is for machines)."""

from __future__ import annotations

from rich.table import Table

from ..tasks.base import score_label


def _n(x: int) -> str:
    return f"{x:,}"


def layer_table(record: dict) -> Table:
    """Per-layer table: type, shape, params, nonzeros, bits, bytes, MACs, latency share."""
    t = Table(title=f"{record['model']} — layers", title_justify="left")
    for col in ("layer", "type", "shape", "params", "nonzero", "bits/w", "bytes", "MACs",
                "latency share"):
        t.add_column(col, justify="left" if col in ("layer", "type", "shape") else "right")
    for r in record["layers"]:
        share = r.get("latency_share")
        t.add_row(
            r["name"], r["type"], "×".join(map(str, r["shape"])), _n(r["params"]),
            _n(r["nonzero"]), f"{r['bits_per_weight']:g}", _n(r["bytes"]), _n(r["macs"]),
            "" if share is None else f"{share * 100:.1f}%",
        )
    return t


def summary_table(record: dict) -> Table:
    """Whole-model figures, with the baseline beside them where there is one."""
    t = Table(title=f"{record['model']} — {record.get('data', '')} test, "
                    f"{record['threads']} threads", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("baseline", justify="right")
    lat, blat = record["latency_ms"], record["baseline_latency_ms"]
    label = score_label(record.get("score_name"))
    rows = [
        ("parameters (count)", _n(record["params"]), ""),
        ("nonzero parameters (count)", _n(record["nonzero_params"]), ""),
        ("MACs per example (count)", _n(record["macs"]), ""),
        (label, f"{record['accuracy'] * 100:.2f}%", f"{record['baseline_accuracy'] * 100:.2f}%"),
        ("accuracy drop" if label == "top-1 accuracy" else f"{label} drop",
         f"{record['accuracy_drop_pp']:.2f} pp", ""),
        ("size on disk", f"{_n(record['size_bytes'])} B", f"{_n(record['baseline_size_bytes'])} B"),
        ("compression ratio", f"{record['compression_ratio']:.2f}×", ""),
        ("latency batch 1 p50", f"{lat['batch1_p50']:.3f} ms", f"{blat['batch1_p50']:.3f} ms"),
        ("latency batch 1 p95", f"{lat['batch1_p95']:.3f} ms", f"{blat['batch1_p95']:.3f} ms"),
        (f"latency batch {lat['batch_n']} p50", f"{lat['batchN_p50']:.3f} ms",
         f"{blat['batchN_p50']:.3f} ms"),
        ("peak RSS", f"{record['peak_rss_mb']:.0f} MiB", ""),
    ]
    metrics, base = record.get("metrics") or {}, record.get("baseline_metrics") or {}
    if "perplexity" in metrics:
        rows.insert(5, ("perplexity", f"{metrics['perplexity']:.2f}",
                        f"{base['perplexity']:.2f}" if "perplexity" in base else ""))
    for key, name in (("agreement", "top-1 agreement with baseline"),
                      ("next_token_agreement", "next-token agreement with baseline")):
        if isinstance(record.get(key), float):
            rows.insert(5, (name, f"{record[key] * 100:.2f}%", ""))
    for row in rows:
        t.add_row(*row)
    return t

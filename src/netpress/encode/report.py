"""Readable tables of an artifact's costs: Han et al.'s Tables 2–3 and per-stream statistics."""

from __future__ import annotations

from rich.table import Table


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def han_table(info: dict, title: str | None = None) -> Table:
    """Per layer: weights kept, value and index bits before/after entropy coding, rate.

    ``info`` is ``netpress.encode.inspect.inspect_bytes`` output. Bits are per stored
    nonzero weight; the rate is the layer's bytes over its fp32 bytes. The total row
    counts every byte of the file (header and padding included).

    Example:
        >>> from netpress.encode.artifact import artifact_bytes
        >>> from netpress.encode.inspect import inspect_bytes
        >>> from netpress.zoo import build_model
        >>> han_table(inspect_bytes(artifact_bytes(build_model("lenet5"), "lenet5"))).row_count
        12
    """
    t = Table(title=title or f"{info['model'].get('spec')} — artifact, per layer",
              title_justify="left")
    for col in ("tensor", "shape", "kept", "codebook", "bits P+Q", "bits P+Q+H", "index",
                "index bits P+Q", "index bits P+Q+H", "bytes", "rate", "ratio"):
        t.add_column(col, justify="left" if col in ("tensor", "shape", "index") else "right")
    for r in info["tensors"]:
        shared = r["encoding"] == "shared"
        t.add_row(
            r["name"], "×".join(map(str, r["shape"])), _pct(r["kept"]),
            str(r.get("codebook_size", "fp32")) if shared else "raw",
            str(r["value_bits_pq"]) if shared else "32",
            f"{r['value_bits_pqh']:.2f}" if shared else "32",
            r["index_kind"],
            f"{r['index_bits_pq']:.2f}" if shared else "-",
            f"{r['index_bits_pqh']:.2f}" if shared else "-",
            f"{r['bytes']:,}", _pct(r["rate"]),
            f"{1 / r['rate']:.1f}×" if r["rate"] else "-",
        )
    t.add_row("header + padding", "", "", "", "", "", "", "", "",
              f"{info['header_bytes'] + info['padding_bytes']:,}", "", "")
    t.add_row("total", f"{info['params']:,} params", _pct(info["nonzero_params"] / info["params"]),
              "", "", "", "", "", "", f"{info['file_bytes']:,}",
              _pct(1 / info["compression_ratio"]), f"{info['compression_ratio']:.1f}×")
    return t


def streams_table(info: dict) -> Table:
    """Every coded stream: symbols, bits/symbol, entropy and overhead over the bound.

    Example:
        >>> from netpress.encode.artifact import artifact_bytes
        >>> from netpress.encode.inspect import inspect_bytes
        >>> from netpress.zoo import build_model
        >>> streams_table(inspect_bytes(artifact_bytes(build_model("lenet5"), "lenet5"))).row_count
        0
    """
    t = Table(title="coded streams (table + payload vs. empirical entropy bound)",
              title_justify="left")
    for col in ("tensor", "part", "coder", "symbols", "alphabet", "bytes", "table",
                "bits/symbol", "entropy bits", "bound bytes", "overhead"):
        t.add_column(col, justify="left" if col in ("tensor", "part", "coder") else "right")
    for r in info["tensors"]:
        for s in r.get("streams", []):
            t.add_row(r["name"], s["part"], s["coder"], f"{s['symbols']:,}", str(s["alphabet"]),
                      f"{s['bytes']:,}", str(s["table_bytes"]), f"{s['bits_per_symbol']:.3f}",
                      f"{s['entropy_bits']:.3f}", f"{s['bound_bytes']:.1f}",
                      "-" if s["overhead"] is None else f"{s['overhead'] * 100:+.2f}%")
    if info["coded_overhead"] is not None:
        t.add_row("all", "", "", "", "", f"{info['coded_stream_bytes']:,}", "", "", "",
                  f"{info['entropy_bound_bytes']:.1f}", f"{info['coded_overhead'] * 100:+.2f}%")
    return t

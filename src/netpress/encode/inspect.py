"""What each part of an artifact costs: per-tensor bytes, per-stream statistics, Han's table.

Every figure is counted from the file itself: the bytes of each stream as stored, the
header as stored, the alignment padding. Per coded stream it reports symbols, bits per
symbol, the empirical Shannon entropy of the decoded symbols and the overhead of
(table + payload) over the entropy bound ``symbols × entropy / 8``. The per-tensor rows
follow Han et al. 2016, Tables 2–3: weights kept, value bits before and after entropy
coding (P+Q, P+Q+H), index bits before and after, and the compression rate.
"""

from __future__ import annotations

import math

import numpy as np  # noqa: F401 - used by the doctests

from .arrays import decode_stream
from .container import PREFIX, unpack_container
from .sparse import entropy_bits


def stream_stats(entry: dict, streams: list[bytes]) -> dict:
    """Statistics of one coded stream (see the module docstring).

    Example:
        >>> from netpress.encode.tensors import code_stream
        >>> s = []
        >>> e = code_stream(np.array([0, 1] * 500), 2, "ans", s)
        >>> round(stream_stats(e, s)["entropy_bits"], 3)
        1.0
    """
    sym = decode_stream(entry, streams, 1 << 40)
    nbytes = len(streams[entry["stream"]])
    h = entropy_bits(sym)
    bound = sym.size * h / 8
    return {"coder": entry["coder"], "symbols": int(sym.size), "alphabet": entry["alphabet"],
            "bytes": nbytes, "table_bytes": entry["table_bytes"],
            "bits_per_symbol": nbytes * 8 / sym.size if sym.size else 0.0,
            "entropy_bits": h, "bound_bytes": bound,
            "overhead": nbytes / bound - 1 if bound > 0 else None}


def _tensor_row(t: dict, streams: list[bytes]) -> dict:
    shape = t["shape"]
    numel = math.prod(shape) if shape else 1
    row = {"name": t["name"], "shape": shape, "encoding": t["encoding"], "numel": numel}
    if t["encoding"] in ("same", "transpose"):  # stored once, under another name
        row.update(nonzero=numel, kept=1.0, raw_bytes=0, codebook_bytes=0, index_bytes=0,
                   value_bytes=0, bytes=0, index_kind=f"{t['encoding']} as {t['of']}",
                   streams=[])
        return row
    if t["encoding"] in ("raw", "half"):
        n = len(streams[t["stream"]])
        row.update(nonzero=numel, kept=1.0, raw_bytes=n, codebook_bytes=0, index_bytes=0,
                   value_bytes=0, bytes=n, index_kind="-", streams=[])
        return row
    if t["encoding"] == "coded":  # int8 / 4-bit codes, Huffman-coded in chunks
        stats = [dict(stream_stats(c, streams), part="codes") for c in t["chunks"]]
        n = sum(len(streams[c["stream"]]) for c in t["chunks"])
        row.update(nonzero=numel, kept=1.0, raw_bytes=0, codebook_bytes=0, index_bytes=0,
                   value_bytes=n, bytes=n, index_kind="-", streams=stats,
                   value_bits_pq=4 if t["nibbles"] else 8, value_bits_pqh=n * 8 / max(1, numel))
        return row
    nnz = t["nonzero"]
    pos, vals = t["positions"], t["values"]
    book = len(streams[t["codebook"]["stream"]])
    index = len(streams[pos["stream"]]) if "stream" in pos else 0
    value = len(streams[vals["stream"]])
    stats = [dict(stream_stats(vals, streams), part="values")]
    if pos["kind"] == "relative":
        stats.append(dict(stream_stats(pos, streams), part="index"))
    q = max(1, math.ceil(math.log2(max(1, t["codebook"]["size"]))))
    index_bits_pq = {"relative": pos.get("gap_bits", 0) * pos.get("symbols", 0) / max(1, nnz),
                     "bitmap": numel / max(1, nnz), "dense": 0.0}[pos["kind"]]
    row.update(nonzero=nnz, kept=nnz / numel if numel else 0.0, raw_bytes=0,
               codebook_bytes=book, index_bytes=index, value_bytes=value,
               bytes=book + index + value, index_kind=pos["kind"],
               candidate_index_bytes={"bitmap": -(-numel // 8),
                                      "relative": index if pos["kind"] == "relative" else None},
               codebook_size=t["codebook"]["size"],
               value_bits_pq=q, value_bits_pqh=value * 8 / max(1, nnz),
               index_bits_pq=index_bits_pq, index_bits_pqh=index * 8 / max(1, nnz),
               streams=stats)
    return row


def _float_names(header: dict) -> set[str]:
    return {t["name"] for t in header["tensors"] if t.get("dtype") in ("float32", "float16")}


def inspect_bytes(data: bytes) -> dict:
    """Per-tensor costs, stream statistics and totals of an artifact held in ``data``.

    Example:
        >>> from netpress.encode.artifact import artifact_bytes
        >>> from netpress.zoo import build_model
        >>> info = inspect_bytes(artifact_bytes(build_model("lenet5"), "lenet5"))
        >>> info["file_bytes"] == info["header_bytes"] + info["padding_bytes"] + sum(
        ...     r["bytes"] for r in info["tensors"])
        True
    """
    header, streams = unpack_container(data)
    rows = [_tensor_row(t, streams) for t in header["tensors"]]
    for r in rows:
        r["rate"] = r["bytes"] / (4 * r["numel"]) if r["numel"] else 0.0
    stored_header = PREFIX.unpack_from(data)[2]
    header_bytes = PREFIX.size + stored_header
    padding = len(data) - header_bytes - sum(map(len, streams))
    declared = (header.get("model") or {}).get("params")
    params = declared if isinstance(declared, int) and declared > 0 else sum(
        r["numel"] for r in rows)
    coded = [s for r in rows for s in r.get("streams", [])]
    coded_bytes = sum(s["bytes"] for s in coded)
    bound = sum(s["bound_bytes"] for s in coded)
    return {
        "model": header["model"], "recipe": header.get("recipe", []),
        "metrics": header.get("metrics", {}), "file_bytes": len(data),
        "header_bytes": header_bytes, "padding_bytes": padding, "params": params,
        "nonzero_params": sum(r["nonzero"] for r in rows if r["name"] in _float_names(header)),
        "fp32_bytes": 4 * params, "compression_ratio": 4 * params / len(data),
        "coded_stream_bytes": coded_bytes, "entropy_bound_bytes": bound,
        "coded_overhead": coded_bytes / bound - 1 if bound else None,
        "tensors": rows,
    }

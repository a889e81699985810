"""The measurement record of a pruned model, with its sizes as real files.

Bakes the masks, writes the pruned weights twice — dense safetensors and sparse CSR
(``storage.py``) — and measures the pruned model against the original in the same run
(``netpress.profile.measure``: accuracy on test data, latency interleaved). The
record's ``size_bytes`` is the smaller of the two files actually written;
``dense_size_bytes`` and ``sparse_size_bytes`` give both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from torch import nn

from ...bake import bake
from ...io import file_size, save_weights
from ...profile.counters import count_macs, count_params
from ...profile.record import measure, saved_size_bytes
from ...targets import Targets
from ...tasks.classification import as_task
from .masking import overall_sparsity, weight_sparsity
from .resize import STRUCTURED_KEY, STRUCTURED_VALUE
from .storage import save_sparse
from .structured import channel_counts


def pruned_record(
    model: nn.Module,
    baseline: nn.Module,
    data,
    name: str,
    out: str | os.PathLike | None = None,
    sparse_out: str | os.PathLike | None = None,
    structured: bool = False,
    metadata: dict[str, str] | None = None,
    targets: Targets = Targets(),
    threads: int = 2,
    rounds: int = 5,
    progress=None,
) -> dict:
    """Bake ``model``, save it (dense to ``out``, sparse to ``sparse_out``, temp files when
    not given) and measure it against ``baseline`` in the same run.

    Example:
        >>> rec = pruned_record(pruned, base, task, "lenet-300-100")  # doctest: +SKIP
        >>> rec["sparse_size_bytes"] < rec["dense_size_bytes"]  # doctest: +SKIP
        True
    """
    task = as_task(data)
    bake(model)
    meta = dict(metadata or {})
    meta["model"] = meta.get("model", name)
    if structured:
        meta[STRUCTURED_KEY] = STRUCTURED_VALUE
    with tempfile.TemporaryDirectory(prefix="netpress-prune-") as tmp:
        dense_path = Path(out) if out else Path(tmp) / "pruned.safetensors"
        sparse_path = Path(sparse_out) if sparse_out else Path(tmp) / "pruned.sparse.safetensors"
        save_weights(model, dense_path, meta)
        dense = file_size(dense_path)
        sparse = save_sparse(model.state_dict(), sparse_path, meta)
    base_size = saved_size_bytes(baseline)
    rec = measure(model, task, name, baseline=baseline, size_bytes=min(dense, sparse),
                  baseline_size_bytes=base_size, threads=threads, rounds=rounds,
                  progress=progress)
    rec.update({
        "dense_size_bytes": dense,
        "sparse_size_bytes": sparse,
        "size_format": "sparse-csr" if sparse < dense else "dense-safetensors",
        "baseline_params": count_params(baseline),
        "baseline_macs": sum(count_macs(baseline, task.example_inputs(1, "test")).values()),
        "weight_sparsity": overall_sparsity(model, targets),
        "layer_sparsity": weight_sparsity(model, targets),
        "speedup_batch1": rec["baseline_latency_ms"]["batch1_p50"]
        / rec["latency_ms"]["batch1_p50"],
        "speedup_batchN": rec["baseline_latency_ms"]["batchN_p50"]
        / rec["latency_ms"]["batchN_p50"],
    })
    if structured:
        rec["channels"] = channel_counts(model)
        rec["baseline_channels"] = channel_counts(baseline)
    if out:
        rec["out"] = str(out)
    if sparse_out:
        rec["sparse_out"] = str(sparse_out)
    return rec

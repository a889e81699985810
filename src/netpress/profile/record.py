"""The measurement record every measuring command prints (see DESIGN.md).

Every figure is measured here, in one run: size is the bytes of a file really
written, latency the wall time of the deployed form, accuracy on held-out test data.
The baseline is measured in the same run, interleaved, so ratios are fair.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import torch
from torch import nn

from ..data.splits import Split
from ..io import file_size, save_weights
from ..tasks.base import Task
from ..tasks.classification import as_task
from ..version import __version__
from .counters import count_nonzero, count_params, layer_counts
from .timing import Runner, layer_latency_shares, measure_many, peak_rss_mb, torch_runner


def saved_size_bytes(model: nn.Module) -> int:
    """Bytes of the model's state dict written as a real safetensors file."""
    with tempfile.TemporaryDirectory(prefix="netpress-size-") as d:
        path = os.path.join(d, "model.safetensors")
        save_weights(model, path)
        return file_size(path)


def _scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def measure(
    model: nn.Module,
    data: Task | Split,
    name: str,
    baseline: nn.Module | None = None,
    size_bytes: int | None = None,
    baseline_size_bytes: int | None = None,
    runner: Runner | None = None,
    extra_runners: dict[str, Runner] | None = None,
    batch_n: int = 256,
    threads: int = 2,
    rounds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Measure ``model`` (and ``baseline`` in the same run) on the task's test data.

    ``data`` is a Task (a bare Split of images is image classification). ``accuracy`` is
    the task's score (``score_name`` says which: accuracy, cosine, next-token accuracy).

    Returns the record of DESIGN.md. Without a baseline, the model is its own
    baseline (ratio 1). ``runner`` replaces eager torch as the deployed form;
    ``extra_runners`` are timed alongside and reported under ``latency_ms_by_form``.

    Example:
        >>> from netpress.zoo import build_model
        >>> from netpress.data import load_split
        >>> r = measure(build_model("lenet-300-100"), load_split("digits"), "lenet-300-100", rounds=1)
        >>> r["params"], r["macs"]
        (266610, 266200)
    """
    say = progress or (lambda s: None)
    torch.set_num_threads(threads)
    task = as_task(data)
    example = task.example_inputs(1, "test")
    say("counting")
    layers = layer_counts(model, example)
    xn = task.example_inputs(min(batch_n, task.num_examples("test")), "test")
    shares = layer_latency_shares(model, xn, [row.name for row in layers])
    for row in layers:
        row.latency_share = shares.get(row.name)
    say("evaluating")
    out, y = task.predict(model, "test")
    acc = task.score_outputs(out, y)
    base_acc = acc
    base_out = None
    if baseline is not None:
        base_out, _ = task.predict(baseline, "test")
        base_acc = task.score_outputs(base_out, y)
    say("writing files")
    size = size_bytes if size_bytes is not None else saved_size_bytes(model)
    if baseline is None:
        base_size = size if baseline_size_bytes is None else baseline_size_bytes
    else:
        base_size = baseline_size_bytes or saved_size_bytes(baseline)
    say("timing")
    runners = {"model": runner or torch_runner(model)}
    if baseline is not None:
        runners["baseline"] = torch_runner(baseline)
    runners.update(extra_runners or {})
    example_n = None if isinstance(example, torch.Tensor) else xn
    lat = measure_many(runners, example, batch_n=batch_n, threads=threads, rounds=rounds,
                       example_n=example_n)
    keys = ("batch1_p50", "batch1_p95", "batchN_p50", "batch_n")
    record = {
        "model": name,
        "params": count_params(model),
        "nonzero_params": count_nonzero(model),  # tied tensors once, as in "params"
        "macs": sum(r.macs for r in layers),
        "accuracy": acc,
        "baseline_accuracy": base_acc,
        "accuracy_drop_pp": round((base_acc - acc) * 100, 4),
        "size_bytes": size,
        "baseline_size_bytes": base_size,
        "compression_ratio": base_size / size if size else float("inf"),
        "latency_ms": {k: lat["model"][k] for k in keys},
        "baseline_latency_ms": {k: lat["baseline" if baseline is not None else "model"][k]
                                for k in keys},
        "threads": threads,
        "peak_rss_mb": peak_rss_mb(),
        "layers": [r.as_dict() for r in layers],
        "netpress_version": __version__,
        **task.describe(),
        "test_examples": len(y),
    }
    if not task.classes:  # perplexity of a language model, recall@10 of an encoder, …
        record["metrics"] = _scalars(task.metrics_outputs(out, y))
        if base_out is not None:
            record["baseline_metrics"] = _scalars(task.metrics_outputs(base_out, y))
    if base_out is not None:
        cmp = task.compare_outputs(out, base_out)
        record.update({k: v for k, v in cmp.items() if k != "mean_kl"})
    if extra_runners:
        record["latency_ms_by_form"] = {k: {kk: v[kk] for kk in keys} for k, v in lat.items()}
    return record

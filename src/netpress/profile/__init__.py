"""Profiling: exact counts (params, MACs, bytes) and measured latency and memory."""

from .counters import count_macs, count_nonzero, count_params, layer_counts
from .record import measure, saved_size_bytes
from .timing import measure_many, peak_rss_mb, torch_runner

__all__ = ["count_macs", "count_nonzero", "count_params", "layer_counts", "measure",
           "measure_many", "peak_rss_mb", "saved_size_bytes", "torch_runner"]

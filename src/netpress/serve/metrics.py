"""The server's Prometheus metrics (``prometheus-client``), in one registry per app.

| metric | type | labels | what |
|---|---|---|---|
| ``netpress_requests_total`` | counter | variant, status | answered requests (status: HTTP code) |
| ``netpress_request_errors_total`` | counter | reason | rejected requests (bad_json, shape, dtype, …) |
| ``netpress_request_latency_seconds`` | histogram | variant | wall time from request to answer |
| ``netpress_batch_size`` | histogram | variant | examples per micro-batch |
| ``netpress_queue_depth`` | gauge | variant | examples waiting or running |
| ``netpress_model_version`` | gauge | variant, version | 1 for the version each variant serves |
| ``netpress_swaps_total`` | counter | variant | hot swaps to a new version |
| ``netpress_shadow_examples_total`` | counter | | examples also run on the baseline |
| ``netpress_shadow_agreement`` | gauge | | top-1 agreement (or cosine) with the baseline, last window |
| ``netpress_shadow_kl`` | gauge | | mean KL(baseline ‖ served), last window |
| ``netpress_drift_psi`` | gauge | side, stat | PSI vs the calibration set (max/mean over features) |
| ``netpress_drift_ks`` | gauge | side | largest per-feature KS statistic |
| ``netpress_drift_class_mix_psi`` | gauge | | PSI of the predicted-class mix |
| ``netpress_drift_examples`` | gauge | | examples in the drift window |
| ``netpress_alert`` | gauge | kind | 1 while a threshold of the config is crossed |

Example:
    >>> m = Metrics()
    >>> m.errors.labels(reason="bad_json").inc()
    >>> b"netpress_request_errors_total" in m.render()
    True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ALERT_KINDS = ("input_drift", "output_drift", "shadow_agreement", "shadow_kl")


class Metrics:
    """The collectors of one server (a private registry, so tests can run several)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("netpress_requests", "Answered requests.", ["variant", "status"],
                                registry=r)
        self.errors = Counter("netpress_request_errors", "Rejected requests.", ["reason"],
                              registry=r)
        self.latency = Histogram("netpress_request_latency_seconds", "Request wall time.",
                                 ["variant"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch = Histogram("netpress_batch_size", "Examples per micro-batch.", ["variant"],
                               buckets=BATCH_BUCKETS, registry=r)
        self.depth = Gauge("netpress_queue_depth", "Examples waiting or running.", ["variant"],
                           registry=r)
        self.version = Gauge("netpress_model_version", "1 for the served version.",
                             ["variant", "version"], registry=r)
        self.swaps = Counter("netpress_swaps", "Hot swaps to a new version.", ["variant"], registry=r)
        self.shadow_n = Counter("netpress_shadow_examples", "Examples also run on the baseline.",
                                registry=r)
        self.agreement = Gauge("netpress_shadow_agreement", "Agreement with the baseline.",
                               registry=r)
        self.kl = Gauge("netpress_shadow_kl", "Mean KL(baseline || served).", registry=r)
        self.psi = Gauge("netpress_drift_psi", "PSI vs the calibration set.", ["side", "stat"],
                         registry=r)
        self.ks = Gauge("netpress_drift_ks", "Largest per-feature KS statistic.", ["side"],
                        registry=r)
        self.mix = Gauge("netpress_drift_class_mix_psi", "PSI of the predicted-class mix.",
                         registry=r)
        self.drift_n = Gauge("netpress_drift_examples", "Examples in the drift window.", registry=r)
        self.alert = Gauge("netpress_alert", "1 while a threshold is crossed.", ["kind"], registry=r)
        for kind in ALERT_KINDS:
            self.alert.labels(kind=kind).set(0)

    def set_version(self, variant: str, old: str | None, new: str) -> None:
        """Point ``netpress_model_version`` of ``variant`` at ``new``."""
        if old is not None:
            self.version.labels(variant=variant, version=old).set(0)
        self.version.labels(variant=variant, version=new).set(1)

    def set_drift(self, stats: dict) -> None:
        """Export a ``DriftMonitor.stats()`` result (None values are skipped)."""
        self.drift_n.set(stats.get("examples", 0))
        for side in ("input", "output"):
            for stat in ("max", "mean"):
                v = stats.get(f"{side}_psi_{stat}")
                if v is not None:
                    self.psi.labels(side=side, stat=stat).set(v)
            if stats.get(f"{side}_ks_max") is not None:
                self.ks.labels(side=side).set(stats[f"{side}_ks_max"])
        if stats.get("class_mix_psi") is not None:
            self.mix.set(stats["class_mix_psi"])

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

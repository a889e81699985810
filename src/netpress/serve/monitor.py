"""Production monitoring of the served model: shadow comparison, drift, and the alert state.

``Monitor.observe`` is called with every answered batch of requests (on the event loop,
cheap: it keeps block features and, for a sampled request, queues a baseline run on the
shadow thread). Every ``drift_every`` examples the drift window is tested; the alert state
is recomputed from the latest numbers and exported as ``netpress_alert{kind}``:

| kind | raised when |
|---|---|
| ``input_drift`` | largest input PSI > ``psi_alert`` or largest input KS > ``ks_alert`` |
| ``output_drift`` | largest output PSI or class-mix PSI > ``psi_alert``, or output KS > ``ks_alert`` |
| ``shadow_agreement`` | shadow agreement < ``min_agreement`` (after ``shadow_min`` examples) |
| ``shadow_kl`` | shadow mean KL > ``max_kl`` (after ``shadow_min`` examples) |

Example:
    >>> mon = Monitor(ServeConfig(), Metrics(), reference=None, baseline=None)
    >>> mon.status()["alerts"]
    {}
"""

from __future__ import annotations

import threading

import numpy as np

from .config import ServeConfig
from .drift import DriftMonitor
from .metrics import Metrics
from .shadow import Shadow


class Monitor:
    """Shadow, drift and alerts of one server."""

    def __init__(self, cfg: ServeConfig, metrics: Metrics, reference: dict | None, baseline):
        self.cfg = cfg
        self.metrics = metrics
        self.drift = DriftMonitor(reference, cfg.drift_window, cfg.drift_min) \
            if reference is not None else None
        self.shadow = Shadow(baseline, cfg.shadow_rate, cfg.shadow_window)
        self.drift_stats: dict = {}
        self.alerts: dict[str, str] = {}
        self._since = 0
        self._lock = threading.Lock()

    def observe(self, feeds: dict[str, np.ndarray], outputs: np.ndarray) -> None:
        """Record one answered request."""
        if self.drift is not None:
            x = next(iter(feeds.values()))
            self.drift.add(x, outputs)
            self._since += len(x)
            if self._since >= self.cfg.drift_every:
                self._since = 0
                self.drift_stats = self.drift.stats()
                self.metrics.set_drift(self.drift_stats)
                self.update_alerts()
        if self.shadow.pick():
            self.shadow.submit(feeds, outputs, done=self._shadow_done)

    def _shadow_done(self, n: int) -> None:
        self.metrics.shadow_n.inc(n)
        s = self.shadow.stats()
        if s["agreement"] is not None:
            self.metrics.agreement.set(s["agreement"])
        if s["kl"] is not None:
            self.metrics.kl.set(s["kl"])
        self.update_alerts()

    def update_alerts(self) -> dict[str, str]:
        """Recompute the alert state from the latest drift and shadow numbers."""
        c, d, s = self.cfg, self.drift_stats, self.shadow.stats()
        found: dict[str, str] = {}

        def over(key: str, limit: float) -> str | None:
            v = d.get(key)
            return f"{key} {v:.3f} > {limit:g}" if v is not None and v > limit else None

        for side in ("input", "output"):
            why = [w for w in (over(f"{side}_psi_max", c.psi_alert), over(f"{side}_ks_max", c.ks_alert),
                               over("class_mix_psi", c.psi_alert) if side == "output" else None) if w]
            if why:
                found[f"{side}_drift"] = "; ".join(why)
        if s["window"] >= c.shadow_min:
            if s["agreement"] is not None and s["agreement"] < c.min_agreement:
                found["shadow_agreement"] = f"agreement {s['agreement']:.3f} < {c.min_agreement:g}"
            if s["kl"] is not None and s["kl"] > c.max_kl:
                found["shadow_kl"] = f"mean KL {s['kl']:.4f} > {c.max_kl:g}"
        with self._lock:
            self.alerts = found
        for kind in ("input_drift", "output_drift", "shadow_agreement", "shadow_kl"):
            self.metrics.alert.labels(kind=kind).set(1 if kind in found else 0)
        return found

    def flush(self) -> None:
        """Test now: drift on the current window, alerts on everything (for ``/v1/status``)."""
        if self.drift is not None:
            self.drift_stats = self.drift.stats()
            self.metrics.set_drift(self.drift_stats)
        self.update_alerts()

    def status(self) -> dict:
        """Drift statistics, shadow statistics and alerts, for ``/v1/status``."""
        return {"drift": self.drift_stats if self.drift is not None else
                {"note": "no reference.json: input and output drift are off"},
                "shadow": self.shadow.stats() if self.shadow.baseline is not None else
                {"note": "no baseline: shadow mode is off"},
                "alerts": dict(self.alerts)}

    def close(self) -> None:
        """Finish queued shadow comparisons."""
        self.shadow.close()

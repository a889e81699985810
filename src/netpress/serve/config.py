"""The server's settings: batching, request limits, shadow sampling, drift and alert thresholds.

Every field has a default; a YAML file (``netpress serve --config serve.yaml``) sets any of
them by name, and an unknown key or a bad value is an error that names it.

Example:
    >>> cfg = ServeConfig.from_dict({"max_batch": 16, "psi_alert": 0.2})
    >>> cfg.max_batch, cfg.psi_alert, cfg.shadow_rate
    (16, 0.2, 0.1)
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``netpress serve`` (units in the comments)."""

    max_batch: int = 32  # examples per micro-batch
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for others
    max_body_bytes: int = 4 << 20  # larger request bodies get 413
    max_examples: int = 256  # examples per request; more get 413
    threads: int = 1  # ONNX Runtime intra-op threads per variant
    queue_step: int = 64  # without a latency budget: one rung down per this many waiting examples
    shadow_rate: float = 0.1  # fraction of requests also run on the baseline (0 = off)
    shadow_window: int = 500  # examples the shadow agreement and KL are averaged over
    drift_window: int = 500  # examples the drift statistics are computed on
    drift_every: int = 100  # recompute drift after this many new examples
    drift_min: int = 200  # examples needed before drift is judged
    psi_alert: float = 0.25  # alert when the largest per-feature PSI (input or output) exceeds it
    ks_alert: float = 0.3  # alert when the largest per-feature KS statistic exceeds it
    min_agreement: float = 0.9  # alert when shadow top-1 agreement (or cosine) falls below it
    max_kl: float = 0.2  # alert when the shadow mean KL(baseline || served) exceeds it
    shadow_min: int = 50  # shadow examples needed before agreement and KL are judged
    watch_seconds: float = 0.0  # poll registry aliases this often for a new champion (0 = off)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"serve config {f.name} must be a number, got {v!r}")
            if f.type == "int" and not isinstance(v, int):
                raise ConfigError(f"serve config {f.name} must be a whole number, got {v!r}")
        for name in ("max_batch", "max_body_bytes", "max_examples", "threads", "queue_step",
                     "shadow_window", "drift_window", "drift_every", "drift_min", "shadow_min"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve config {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.shadow_rate <= 1.0:
            raise ConfigError(f"serve config shadow_rate must be in [0, 1], got {self.shadow_rate}")
        for name in ("max_wait_ms", "psi_alert", "ks_alert", "max_kl", "watch_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"serve config {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"serve config min_agreement must be in [0, 1], got {self.min_agreement}")

    @classmethod
    def from_dict(cls, d: dict) -> ServeConfig:
        """Build from a dict of field names; unknown keys are an error naming them."""
        if not isinstance(d, dict):
            raise ConfigError(f"a serve config is a mapping of settings, got {type(d).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"unknown serve config keys {unknown}; known: {', '.join(names)}")
        vals = {}
        for k, v in d.items():
            if names[k].type == "float" and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            vals[k] = v
        return cls(**vals)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ServeConfig:
        """Read a YAML file of settings.

        Example:
            >>> ServeConfig.from_file("missing.yaml")
            Traceback (most recent call last):
            ...
            netpress.errors.ConfigError: serve config missing.yaml not found; ...
        """
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"serve config {p} not found; give a YAML file of settings "
                              "(docs/serve.md lists them)")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"serve config {p} is not valid YAML ({e})") from e
        return cls.from_dict(data)

"""Shadow mode: a sample of requests also runs on the fp32 baseline, off the request path.

For classifier outputs (2-D, at least 2 columns) each shadowed example gives top-1
agreement (1 or 0) and KL(softmax(baseline) ‖ softmax(served)); for other outputs
(embeddings) agreement is the cosine of the two outputs and KL is not defined. Both are
averaged over the last ``window`` shadowed examples. Requests are picked by a counter
(every ``1 / rate``-th request), so the sample is deterministic.

Example:
    >>> import numpy as np
    >>> s = Shadow(baseline=None, rate=1.0)
    >>> s.compare(np.array([[2.0, 0.0]]), np.array([[1.5, 0.1]]))
    >>> s.stats()["agreement"]
    1.0
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64.

    Example:
        >>> softmax(np.zeros((1, 2))).tolist()
        [[0.5, 0.5]]
    """
    z = np.asarray(x, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def kl_rows(p_logits: np.ndarray, q_logits: np.ndarray) -> np.ndarray:
    """KL(softmax(p) ‖ softmax(q)) per row, in nats.

    Example:
        >>> kl_rows(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]])).tolist()
        [0.0]
    """
    p, q = softmax(p_logits), softmax(q_logits)
    return np.sum(p * (np.log(np.maximum(p, 1e-12)) - np.log(np.maximum(q, 1e-12))), axis=1)


class Shadow:
    """Compares served outputs with the baseline's on a sample of requests (thread-safe)."""

    def __init__(self, baseline, rate: float = 0.1, window: int = 500):
        self.baseline = baseline  # a runtime Model, or None (compare() fed directly)
        self.rate = rate
        self._every = max(1, round(1 / rate)) if rate > 0 else 0
        self._count = 0
        self._agree: collections.deque = collections.deque(maxlen=window)
        self._kl: collections.deque = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.examples = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netpress-shadow")

    def pick(self) -> bool:
        """Whether this request is shadowed."""
        if not self._every or self.baseline is None:
            return False
        with self._lock:
            self._count += 1
            return self._count % self._every == 0

    def submit(self, feeds: dict, served: np.ndarray, done=None) -> concurrent.futures.Future:
        """Run the baseline on ``feeds`` on the shadow thread and compare; ``done`` is called
        with the number of examples compared."""
        def job() -> int:
            self.compare(self.baseline.run(feeds), served)
            if done is not None:
                done(len(served))
            return len(served)

        return self._pool.submit(job)

    def compare(self, base: np.ndarray, served: np.ndarray) -> None:
        """Add one batch of baseline and served outputs to the window."""
        b = np.asarray(base).reshape(len(base), -1)
        s = np.asarray(served).reshape(len(served), -1)
        if b.shape[1] >= 2 and np.asarray(base).ndim == 2:
            agree = (b.argmax(1) == s.argmax(1)).astype(float)
            kl = kl_rows(b, s)
        else:
            num = np.sum(b * s, axis=1)
            den = np.linalg.norm(b, axis=1) * np.linalg.norm(s, axis=1)
            agree = num / np.maximum(den, 1e-12)
            kl = None
        with self._lock:
            self._agree.extend(agree.tolist())
            if kl is not None:
                self._kl.extend(kl.tolist())
            self.examples += len(agree)

    def stats(self) -> dict:
        """``{"examples", "window", "agreement", "kl"}`` (None before any comparison)."""
        with self._lock:
            a, k = list(self._agree), list(self._kl)
        return {"examples": self.examples, "window": len(a),
                "agreement": float(np.mean(a)) if a else None,
                "kl": float(np.mean(k)) if k else None}

    def close(self) -> None:
        """Finish pending comparisons and stop the thread."""
        self._pool.shutdown(wait=True)

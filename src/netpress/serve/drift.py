"""Input and output drift against the calibration set: PSI and KS per feature (numpy only).

A *reference* (``reference.json``, written by ``netpress compress`` from the calibration
split) holds, per feature, decile bin edges with the calibration set's share in each bin
(for PSI) and 21 quantiles with the calibration CDF at each (for KS). Features are the
flattened input — and the first output — averaged in at most ``MAX_FEATURES``
contiguous blocks (an image's bands of rows; an embedding's groups of dimensions), so
one feature is stable enough to test on a few hundred requests. Classifier outputs also
get the *class mix*: the share of each predicted class.

``DriftMonitor`` keeps the last ``window`` examples the server answered and recomputes:

- PSI = Σ (p − q) · ln(p / q) over bins, window share p, reference share q, both
  floored at 1e-4 (usual reading: < 0.1 stable, 0.1–0.25 moderate, > 0.25 major shift);
- KS = the largest gap between the window's CDF and the reference CDF at the stored
  quantiles (the two-sample statistic on a 21-point grid; a lower bound of the exact one).

Written here because the libraries that do this (evidently, alibi-detect, nannyml) pull
in pandas stacks or torch/tensorflow and keep the whole reference sample; the server must
stay numpy + ONNX Runtime and keep ~10 KB of reference.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = build_reference(rng.normal(size=(2000, 8)).astype(np.float32),
    ...                       rng.normal(size=(2000, 3)).astype(np.float32))
    >>> mon = DriftMonitor(ref, window=500)
    >>> mon.add(rng.normal(size=(500, 8)), rng.normal(size=(500, 3)))
    >>> mon.stats()["input_psi_max"] < 0.1
    True
"""

from __future__ import annotations

import collections
import threading

import numpy as np

from ..errors import FormatError

MAX_FEATURES = 64
PSI_FLOOR = 1e-4
GRID = np.linspace(0.0, 1.0, 21)
REFERENCE_VERSION = 1


def blocks(dim: int, max_features: int = MAX_FEATURES) -> list[int]:
    """Start offsets of the contiguous blocks that become features.

    Example:
        >>> blocks(10, 4)
        [0, 3, 6, 8]
    """
    return [int(a[0]) for a in np.array_split(np.arange(dim), min(dim, max_features))]


def features(x: np.ndarray, starts: list[int]) -> np.ndarray:
    """Per example, the mean of each block of the flattened values: ``(n, len(starts))``.

    Example:
        >>> features(np.arange(8.0).reshape(2, 4), [0, 2]).tolist()
        [[0.5, 2.5], [4.5, 6.5]]
    """
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    sums = np.add.reduceat(flat, starts, axis=1)
    sizes = np.diff(np.append(starts, flat.shape[1]))
    return sums / sizes


def _side(x: np.ndarray) -> dict:
    starts = blocks(int(np.prod(x.shape[1:])))
    f = features(x, starts)
    edges, shares, quants, cdf = [], [], [], []
    for col in f.T:
        e = np.unique(np.quantile(col, np.linspace(0.1, 0.9, 9)))
        edges.append(e.tolist())
        shares.append((np.bincount(np.searchsorted(e, col, side="right"), minlength=len(e) + 1)
                       / len(col)).tolist())
        q = np.quantile(col, GRID)
        quants.append(q.tolist())
        cdf.append([float(np.mean(col <= v)) for v in q])
    return {"shape": list(x.shape[1:]), "starts": starts, "edges": edges, "shares": shares,
            "quantiles": quants, "cdf": cdf}


def build_reference(inputs: np.ndarray, outputs: np.ndarray) -> dict:
    """The reference statistics of calibration ``inputs`` and the model's ``outputs``.

    Example:
        >>> ref = build_reference(np.random.rand(300, 1, 4, 4), np.random.rand(300, 10))
        >>> ref["input"]["shape"], len(ref["class_mix"])
        ([1, 4, 4], 10)
    """
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    if len(inputs) != len(outputs) or len(inputs) < 20:
        raise FormatError("a drift reference needs the same number (at least 20) of inputs "
                          f"and outputs, got {len(inputs)} and {len(outputs)}")
    ref = {"version": REFERENCE_VERSION, "n": int(len(inputs)), "input": _side(inputs),
           "output": _side(outputs)}
    if outputs.ndim == 2 and 2 <= outputs.shape[1] <= 1000:
        ref["class_mix"] = (np.bincount(outputs.argmax(1), minlength=outputs.shape[1])
                            / len(outputs)).tolist()
    return ref


def check_reference(ref: object) -> dict:
    """``ref`` if it looks like a reference this module wrote; FormatError otherwise.

    Example:
        >>> check_reference({})
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: not a drift reference (version None); ...
    """
    if not isinstance(ref, dict) or ref.get("version") != REFERENCE_VERSION or \
            not all(isinstance(ref.get(k), dict) for k in ("input", "output")):
        v = ref.get("version") if isinstance(ref, dict) else None
        raise FormatError(f"not a drift reference (version {v}); use the reference.json that "
                          "`netpress compress` writes in its run folder")
    return ref


def psi(window_share: np.ndarray, ref_share: np.ndarray) -> float:
    """Population stability index of two share vectors (floored at 1e-4).

    Example:
        >>> round(psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])), 6)
        0.0
    """
    p = np.maximum(np.asarray(window_share, float), PSI_FLOOR)
    q = np.maximum(np.asarray(ref_share, float), PSI_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))


def side_drift(f: np.ndarray, side: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per feature of window features ``f``: ``(psi, ks)`` against ``side``'s reference.

    Example:
        >>> ref = build_reference(np.random.rand(500, 4), np.random.rand(500, 2))
        >>> p, k = side_drift(features(np.random.rand(500, 4) + 1, ref["input"]["starts"]),
        ...                   ref["input"])
        >>> bool(k.min() > 0.5)
        True
    """
    n = len(f)
    psis, kss = [], []
    for j, col in enumerate(f.T):
        e = np.asarray(side["edges"][j])
        share = np.bincount(np.searchsorted(e, col, side="right"), minlength=len(e) + 1) / n
        psis.append(psi(share, side["shares"][j]))
        q = np.asarray(side["quantiles"][j])
        win_cdf = np.searchsorted(np.sort(col), q, side="right") / n
        kss.append(float(np.max(np.abs(win_cdf - np.asarray(side["cdf"][j])))))
    return np.asarray(psis), np.asarray(kss)


class DriftMonitor:
    """A sliding window of the last ``window`` examples, tested against ``reference``.

    ``add`` is cheap (it keeps block features); ``stats`` recomputes PSI and KS and is
    called every ``every`` examples by the server. Thread-safe.
    """

    def __init__(self, reference: dict, window: int = 500, min_examples: int = 200):
        self.ref = check_reference(reference)
        self.min_examples = min_examples
        self._in: collections.deque = collections.deque(maxlen=window)
        self._out: collections.deque = collections.deque(maxlen=window)
        self._cls: collections.deque = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.seen = 0

    def add(self, inputs: np.ndarray, outputs: np.ndarray) -> None:
        """Record a batch the server answered (inputs and the model's first output)."""
        fi = features(inputs, self.ref["input"]["starts"])
        fo = features(outputs, self.ref["output"]["starts"])
        cls = np.asarray(outputs).reshape(len(outputs), -1).argmax(1) if "class_mix" in self.ref \
            else np.zeros(len(outputs), int)
        with self._lock:
            self._in.extend(fi)
            self._out.extend(fo)
            self._cls.extend(cls.tolist())
            self.seen += len(fi)

    def stats(self) -> dict:
        """``{"examples", "input_psi_max", "input_psi_mean", "input_ks_max", "output_…",
        "class_mix_psi"}``; the drift values are None until ``min_examples`` are in."""
        with self._lock:
            fi, fo, cls = np.array(self._in), np.array(self._out), np.array(self._cls)
        out: dict = {"examples": int(len(fi))}
        keys = ("input_psi_max", "input_psi_mean", "input_ks_max", "output_psi_max",
                "output_psi_mean", "output_ks_max", "class_mix_psi")
        if len(fi) < self.min_examples:
            return {**out, **dict.fromkeys(keys)}
        for name, f in (("input", fi), ("output", fo)):
            p, k = side_drift(f, self.ref[name])
            out.update({f"{name}_psi_max": float(p.max()), f"{name}_psi_mean": float(p.mean()),
                        f"{name}_ks_max": float(k.max())})
        mix = self.ref.get("class_mix")
        out["class_mix_psi"] = None if mix is None else psi(
            np.bincount(cls, minlength=len(mix))[: len(mix)] / len(cls), mix)
        return out

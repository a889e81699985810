"""One-dimensional k-means for weight sharing (Han, Mao & Dally 2016, section 3).

Pure maths on arrays: no modules, no parametrizations. Weights are scalars, so
k-means runs on the sorted values: assignment is a ``searchsorted`` against the
midpoints between neighbouring centroids (exact nearest-centroid in 1-D), and the
update is a ``bincount`` — every iteration is a few vectorised passes, no
distance matrix. We write it ourselves because scikit-learn's ``KMeans`` is
general-dimensional (slower here), has no "linear" initialisation and its result
depends on thread scheduling; this one is exact and deterministic.

Initialisations (Han found linear best, because it keeps the few large weights):

- ``linear``: centroids evenly spaced between the smallest and largest value;
- ``density``: centroids at evenly spaced quantiles of the values (the CDF);
- ``random``: ``k`` distinct values drawn with a seeded generator.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Init = Literal["linear", "density", "random"]


def init_centroids(values: np.ndarray, k: int, init: Init = "linear", seed: int = 0) -> np.ndarray:
    """Initial centroids (float64, sorted) for ``k`` clusters of 1-D ``values``.

    Example:
        >>> init_centroids(np.array([0.0, 1.0, 2.0, 4.0]), 3).tolist()
        [0.0, 2.0, 4.0]
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return np.zeros(0)
    k = max(1, min(k, v.size))
    if init == "linear":
        c = np.linspace(v.min(), v.max(), k)
    elif init == "density":
        c = np.quantile(v, np.linspace(0.0, 1.0, k))
    elif init == "random":
        rng = np.random.default_rng(seed)
        c = rng.choice(v, size=k, replace=False)
    else:
        raise ValueError(f"unknown k-means init {init!r}; use linear, density or random")
    return np.sort(c)


def assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (sorted ``centroids``) for every value; ties go low.

    Example:
        >>> assign(np.array([0.1, 0.9, 2.6]), np.array([0.0, 1.0, 3.0])).tolist()
        [0, 1, 2]
    """
    mids = (centroids[1:] + centroids[:-1]) / 2.0
    return np.searchsorted(mids, np.asarray(values, dtype=np.float64), side="left")


def kmeans_1d(
    values: np.ndarray,
    k: int,
    init: Init = "linear",
    iters: int = 50,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster 1-D ``values`` into at most ``k`` groups (Lloyd's algorithm).

    Returns ``(centroids, labels)``: sorted float32 centroids and an int64 label per
    value. A centroid that loses all members is dropped, so fewer than ``k`` may
    come back (never an unused centroid). Stops early when labels stop changing.

    Example:
        >>> c, lab = kmeans_1d(np.array([1.0, 1.1, 5.0, 5.2]), 2)
        >>> [round(float(x), 2) for x in c], lab.tolist()
        ([1.05, 5.1], [0, 0, 1, 1])
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    c = init_centroids(v, k, init, seed)
    labels = assign(v, c)
    for _ in range(iters):
        counts = np.bincount(labels, minlength=c.size)
        sums = np.bincount(labels, weights=v, minlength=c.size)
        keep = counts > 0
        c = np.sort(sums[keep] / counts[keep])
        new = assign(v, c)
        if np.array_equal(new, labels) and keep.all():
            break
        labels = new
    counts = np.bincount(labels, minlength=c.size)
    if (counts == 0).any():  # drop empty clusters and renumber
        remap = np.cumsum(counts > 0) - 1
        c, labels = c[counts > 0], remap[labels]
    c32 = c.astype(np.float32)
    # Float32 rounding can merge two centroids; keep labels pointing at unique values.
    uniq, inv = np.unique(c32, return_inverse=True)
    return uniq, inv[labels].astype(np.int64)

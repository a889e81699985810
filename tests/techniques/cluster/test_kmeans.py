import numpy as np
import pytest

from netpress.techniques.cluster.kmeans import assign, init_centroids, kmeans_1d


def test_known_clusters_recovered():
    rng = np.random.default_rng(0)
    centres = np.array([-2.0, -0.5, 0.7, 3.0])
    values = np.concatenate([c + 0.05 * rng.standard_normal(500) for c in centres])
    for init in ("linear", "density"):
        c, labels = kmeans_1d(values, 4, init=init, seed=1)
        assert c.shape == (4,)
        np.testing.assert_allclose(c, centres, atol=0.01)
        # every value lands in its own generating cluster
        assert (labels == np.repeat(np.arange(4), 500)).all()
    # random init (seed 1) draws two seeds from one cluster and stops in a worse local
    # optimum: the reason Han prefers linear initialisation
    c, labels = kmeans_1d(values, 4, init="random", seed=1)
    sse_random = ((values - c[labels]) ** 2).sum()
    c, labels = kmeans_1d(values, 4, init="linear")
    assert sse_random > 10 * ((values - c[labels]) ** 2).sum()


def test_centroid_is_mean_of_members():
    values = np.array([0.0, 0.1, 0.2, 10.0, 10.4])
    c, labels = kmeans_1d(values, 2)
    assert labels.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_allclose(c, [0.1, 10.2], rtol=1e-6)


def test_linear_init_spans_range_and_density_follows_cdf():
    v = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 10.0])
    assert init_centroids(v, 3, "linear").tolist() == [0.0, 5.0, 10.0]
    assert init_centroids(v, 3, "density").tolist() == [0.0, 0.0, 10.0]


def test_more_clusters_than_distinct_values_drops_empty_ones():
    c, labels = kmeans_1d(np.array([1.0, 1.0, 2.0]), 8)
    assert c.tolist() == [1.0, 2.0] and labels.tolist() == [0, 0, 1]


def test_empty_and_assign():
    c, labels = kmeans_1d(np.array([]), 4)
    assert c.size == 0 and labels.size == 0
    assert assign(np.array([-5.0, 0.49, 0.51]), np.array([0.0, 1.0])).tolist() == [0, 0, 1]


def test_deterministic():
    v = np.random.default_rng(3).standard_normal(2000)
    a = kmeans_1d(v, 16, init="random", seed=7)
    b = kmeans_1d(v, 16, init="random", seed=7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_unknown_init():
    with pytest.raises(ValueError):
        init_centroids(np.ones(3), 2, "bogus")

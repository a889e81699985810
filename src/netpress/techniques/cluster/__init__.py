"""Weight sharing by k-means (Deep Compression's second step)."""

from .kmeans import assign, init_centroids, kmeans_1d
from .share import LayerBits, SharedWeight, WeightShare, codebook_params, share_layer

__all__ = ["LayerBits", "SharedWeight", "WeightShare", "assign", "codebook_params", "init_centroids",
           "kmeans_1d", "share_layer"]

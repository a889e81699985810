"""Cross-layer weight sharing (ALBERT-style tying). Importing registers ``Share``."""

from .tie import Share, similar_groups, tie

__all__ = ["Share", "similar_groups", "tie"]

"""Data sets with netpress's fixed split, and fast deterministic loaders."""

from .loaders import ArrayLoader, load_split
from .splits import Split

__all__ = ["ArrayLoader", "Split", "load_split"]

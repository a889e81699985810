"""netpress: compress trained PyTorch models and prove the result with real measurements.

Example:
    >>> import netpress
    >>> split = netpress.load_split("digits")
    >>> model = netpress.load_model("lenet-300-100")
    >>> netpress.evaluate(model, split).n
    300

The public API is imported on first use, so ``import netpress.runtime`` (the torch-free
runtime of ``.netpress`` files) never imports torch. Some API names are also names of
submodules (``evaluate``, ``profile``, ``train``, ``bake``): the attribute stays the
function even after the submodule is imported (``netpress.evaluate.metrics`` is still
importable).
"""

from __future__ import annotations

import importlib
import sys
import types

from .version import __version__  # noqa: F401 - public

# public name -> module it lives in
_API = {
    "compress": "api", "evaluate": "api", "load_model": "api", "profile": "api", "train": "api",
    "bake": "bake", "Config": "config", "register": "config", "Context": "context",
    "load_split": "data", "NetpressError": "errors", "load_weights": "io",
    "save_weights": "io", "Targets": "targets", "load": "encode.artifact",
}

__all__ = sorted([*_API, "__version__"])


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'netpress' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    types.ModuleType.__setattr__(sys.modules[__name__], name, value)
    return value


class _Package(types.ModuleType):
    """Keeps an API function bound when the subpackage of the same name is imported."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the subpackage stays in sys.modules; the attribute is the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

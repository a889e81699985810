"""``package.module:function`` specs, resolved in one place.

Only specs a *user* types on the command line or passes from Python reach this: files
that netpress reads never name code to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .errors import NetpressError


def is_callable_spec(spec: str) -> bool:
    """Whether ``spec`` looks like ``package.module:function``.

    Example:
        >>> is_callable_spec("mypkg.models:build"), is_callable_spec("lenet5")
        (True, False)
    """
    mod, sep, fn = spec.partition(":")
    return bool(sep and mod and fn) and "/" not in mod


def resolve_callable(spec: str, error: type[NetpressError], what: str) -> Callable:
    """Import ``package.module`` and return its attribute ``function``.

    Example:
        >>> from netpress.errors import ModelError
        >>> resolve_callable("os.path:join", ModelError, "model factory")("a", "b")
        'a/b'
    """
    mod_name, _, fn_name = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise error(f"cannot load {what} {spec!r}: {e}") from e

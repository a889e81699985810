"""Errors a user can cause. Each message says what went wrong and what to do.

The CLI prints ``error: <message>`` on one line and exits non-zero; ``--debug``
shows the traceback.
"""


class NetpressError(Exception):
    """Base class of every error a user can cause.

    Example:
        >>> raise NetpressError("no such file: w.safetensors; train one with `netpress train`")
        Traceback (most recent call last):
        ...
        netpress.errors.NetpressError: no such file: w.safetensors; train one with `netpress train`
    """


class DataError(NetpressError):
    """A data set is missing, truncated or malformed."""


class ModelError(NetpressError):
    """A model name, factory or weights file cannot be used."""


class ConfigError(NetpressError):
    """A technique config or recipe is invalid."""


class FormatError(NetpressError):
    """A file is not in the format netpress expects (wrong magic, truncated, corrupt)."""

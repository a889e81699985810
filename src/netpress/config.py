"""Technique configs and the registry that maps each config type to its handler.

A config is a frozen dataclass with explicit fields. ``to_dict``/``from_dict``
round-trip through plain JSON/YAML values with ``_type`` and ``_version``. The
registry is an explicit dict filled by ``@register``: nothing is discovered by
walking packages.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from torch import nn

from .errors import ConfigError

CONFIGS: dict[str, type[Config]] = {}
HANDLERS: dict[type, Callable] = {}

C = TypeVar("C", bound="Config")


def _to_plain(v: Any) -> Any:
    if isinstance(v, Config):
        return v.to_dict()
    if dataclasses.is_dataclass(v):
        return {f.name: _to_plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, tuple | list):
        return [_to_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_plain(x) for k, x in v.items()}
    return v


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Convert a plain value into the field's declared type, or raise ConfigError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args or (Any, Any)
        return {_convert(k, kt, where): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {hint.__name__}, got {value!r}")
        return _build(hint, value, where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict, where: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields and not k.startswith("_")]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} for {cls.__name__}; "
            f"valid keys: {', '.join(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r} for {cls.__name__}")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every technique config. Subclasses override ``validate`` to reject
    impossible values with a ``ConfigError``.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Toy(Config):
        ...     amount: float = 0.5
        >>> Toy(0.25).to_dict()
        {'_type': 'Toy', '_version': 1, 'amount': 0.25}
    """

    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError for impossible values."""

    def to_dict(self) -> dict:
        """Plain dict with ``_type`` and ``_version``."""
        out: dict[str, Any] = {"_type": type(self).__name__, "_version": self.VERSION}
        for f in dataclasses.fields(self):
            out[f.name] = _to_plain(getattr(self, f.name))
        return out

    @staticmethod
    def from_dict(data: dict, where: str = "config") -> Config:
        """Rebuild a registered config from ``to_dict`` output.

        Example:
            >>> Config.from_dict({"_type": "NoSuchThing"})
            Traceback (most recent call last):
            ...
            netpress.errors.ConfigError: config: unknown technique 'NoSuchThing'; ...
        """
        if not isinstance(data, dict) or "_type" not in data:
            raise ConfigError(f"{where}: a technique config needs a '_type' key")
        name = data["_type"]
        if name not in CONFIGS:
            raise ConfigError(
                f"{where}: unknown technique {name!r}; known: {', '.join(sorted(CONFIGS)) or 'none'}"
            )
        cls = CONFIGS[name]
        version = data.get("_version", cls.VERSION)
        if version != cls.VERSION:
            raise ConfigError(
                f"{where}: {name} config version {version} is not supported "
                f"(this netpress reads version {cls.VERSION})"
            )
        return _build(cls, data, where)


def register(config_cls: type[C]) -> Callable[[Callable], Callable]:
    """Register ``handler(model, cfg, ctx) -> model`` for ``config_cls``.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Noop(Config):
        ...     pass
        >>> @register(Noop)
        ... def apply_noop(model, cfg, ctx):
        ...     return model
    """

    def deco(handler: Callable) -> Callable:
        CONFIGS[config_cls.__name__] = config_cls
        HANDLERS[config_cls] = handler
        return handler

    return deco


def apply(model: nn.Module, cfg: Config, ctx) -> nn.Module:
    """Run the handler registered for ``type(cfg)``."""
    handler = HANDLERS.get(type(cfg))
    if handler is None:
        raise ConfigError(f"no technique registered for {type(cfg).__name__}")
    return handler(model, cfg, ctx)

"""Where a served variant comes from: a file, a run folder, or a registry version or alias.

A source is

- a ``.netpress`` file;
- a run folder (its ``model.netpress``, with ``baseline.netpress`` and ``reference.json``
  beside it when ``netpress compress`` wrote them);
- ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: the version's artifacts are
  downloaded from the registry into the server's cache folder, once per version.

``resolve`` gives a ``Resolved``: the artifact path, a version label, and the folder
holding the companions. Only registry aliases can move; ``Resolved.movable`` says so.

Example:
    >>> resolve("runs/dc").artifact.name  # doctest: +SKIP
    'model.netpress'
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class Resolved:
    """A source resolved to files: ``artifact`` path, ``version`` label, ``folder``."""

    source: str
    artifact: Path
    version: str
    folder: Path
    movable: bool

    def companion(self, name: str) -> Path | None:
        """``baseline.netpress`` or ``reference.json`` beside the artifact, if present."""
        p = self.folder / name
        return p if p.is_file() else None


def _file_version(path: Path) -> str:
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"sha256:{h[:12]}"


def resolve(source: str, cache: str | os.PathLike = ".netpress/serve-cache",
            tracking_uri: str | None = None) -> Resolved:
    """Resolve ``source`` (see the module docstring) to local files.

    Example:
        >>> resolve("missing.netpress")
        Traceback (most recent call last):
        ...
        netpress.errors.ConfigError: no such artifact or run folder: missing.netpress; ...
    """
    if source.startswith("models:/"):
        from ..registry import Store, download
        from ..registry import resolve as resolve_uri

        store = Store(tracking_uri)
        name, version = resolve_uri(store, source)
        dst = Path(cache) / name / version
        if not (dst / "model" / "model.netpress").is_file():
            download(store, name, version, dst)
        folder = dst / "model"
        return Resolved(source, folder / "model.netpress", f"{name}/{version}", folder,
                        "@" in source)
    p = Path(source)
    if p.is_dir():
        p = p / "model.netpress"
    if not p.is_file():
        raise ConfigError(f"no such artifact or run folder: {source}; give a .netpress file, a "
                          "run folder of `netpress compress`, or models:/NAME@ALIAS")
    return Resolved(source, p, _file_version(p), p.parent, False)


def parse_variants(source: str | None, variants: list[str] | None) -> list[tuple[str, str]]:
    """``(name, source)`` pairs, best first: SOURCE as ``main`` then each ``NAME=SOURCE``.

    Example:
        >>> parse_variants("runs/dc", ["int8=q.netpress"])
        [('main', 'runs/dc'), ('int8', 'q.netpress')]
    """
    out = [("main", source)] if source else []
    for v in variants or []:
        name, sep, src = v.partition("=")
        if not sep or not name or not src:
            raise ConfigError(f"--variant takes NAME=SOURCE (e.g. int8=models:/lenet-int8@champion), "
                              f"got {v!r}")
        out.append((name, src))
    if not out:
        raise ConfigError("give a SOURCE (a .netpress file, a run folder or models:/NAME@ALIAS) "
                          "or --variant NAME=SOURCE")
    return out

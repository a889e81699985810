"""Which modules a technique touches: by type, by name or ``re:`` pattern, minus ignores."""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import parametrize


def type_name(m: nn.Module) -> str:
    """The module's class name; a parametrized module (class ``ParametrizedLinear``, made
    by torch.nn.utils.parametrize) answers with its original class's name (``Linear``)."""
    cls = type(m)
    if parametrize.is_parametrized(m) and cls.__name__.startswith("Parametrized"):
        cls = cls.__bases__[0]
    return cls.__name__


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    for p in patterns:
        if p.startswith("re:"):
            if re.fullmatch(p[3:], name):
                return True
        elif p == name:
            return True
    return False


@dataclass(frozen=True)
class Targets:
    """Select modules: type names (``Linear``, ``Conv2d``), exact names or ``re:`` regexes,
    and names/patterns to ignore. Empty ``names`` means every module of the types.

    Example:
        >>> from netpress.zoo import build_model
        >>> [n for n, _ in Targets(types=("Linear",), ignore=("5",)).select(build_model("lenet-300-100"))]
        ['1', '3']
    """

    types: tuple[str, ...] = ("Linear", "Conv2d")
    names: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """The (name, module) pairs selected, in model order."""
        out = []
        for name, m in model.named_modules():
            if not name or type_name(m) not in self.types:
                continue
            if self.names and not _matches(name, self.names):
                continue
            if _matches(name, self.ignore):
                continue
            out.append((name, m))
        return out


def token_embedding(model: nn.Module) -> nn.Embedding | None:
    """The model's token-embedding table: its largest ``nn.Embedding`` (None without one).

    Example:
        >>> token_embedding(nn.Sequential(nn.Embedding(9, 2), nn.Embedding(3, 2))).num_embeddings
        9
    """
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    return max(tables, key=lambda m: m.num_embeddings) if tables else None

"""``bake``: fold the state techniques leave on a model into plain weights.

A core module (it imports nothing of netpress), so techniques, the runner and the
artifact writer may all use it.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize


def bake(model: nn.Module) -> nn.Module:
    """Fold every parametrization (masks, fake-quantizers) into plain weights. Idempotent.

    Safe on a deep copy: ``copy.deepcopy`` shares each module's dynamically created
    ``Parametrized<Class>`` with the original, and ``remove_parametrizations`` deletes
    properties from that class; so each module first gets a private copy of its class.

    Example:
        >>> import copy
        >>> from netpress.techniques.prune.masking import apply_masks  # doctest: +SKIP
        >>> baked = bake(copy.deepcopy(model))  # doctest: +SKIP
    """
    for m in model.modules():
        if parametrize.is_parametrized(m):
            cls = type(m)
            m.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            for name in list(m.parametrizations.keys()):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    return model

"""State dicts with tied weights, for safetensors.

A model with tied weights (GPT-2's ``lm_head.weight`` is ``transformer.wte.weight``) lists
the one tensor under two names in ``state_dict()``; ``safetensors.torch.save_file``
refuses that, and a file holding it once no longer loads with ``load_state_dict(strict=True)``.
``state_for_save`` keeps the first name of every shared tensor; ``load_state`` accepts a
state without the second names because, in a freshly built model, tied names are one
``Parameter``: loading the first name fills both, so the tie survives.
(``safetensors.torch.save_model``/``load_model`` do the same for whole models, but name
the kept key by their own rule and load with a different strictness, so we keep one rule here.)
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError


def _storage_key(t: torch.Tensor) -> tuple | None:
    if t.numel() == 0:
        return None
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def tied_names(model: nn.Module) -> dict[str, str]:
    """``{second name: first name}`` for every state-dict entry that is the same tensor as an
    earlier one.

    Example:
        >>> m = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
        >>> m[1].weight = m[0].weight
        >>> tied_names(m)
        {'1.weight': '0.weight'}
    """
    first: dict[tuple, str] = {}
    out: dict[str, str] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        key = _storage_key(t)
        if key is None:
            continue
        if key in first:
            out[name] = first[key]
        else:
            first[key] = name
    return out


def state_for_save(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with every tied tensor once, contiguous, ready for
    ``safetensors.torch.save_file``; reload it with ``load_state``.

    Example:
        >>> m = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
        >>> m[1].weight = m[0].weight
        >>> sorted(state_for_save(m))
        ['0.weight']
    """
    tied = tied_names(model)
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        if name in tied:
            continue
        t = t.detach().contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:  # overlaps another tensor without being it: store a copy
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "weights") -> nn.Module:
    """Load ``state`` (from ``state_for_save`` or a full ``state_dict``) into ``model``, strictly
    except for the second names of tied weights, which the tie fills.

    Example:
        >>> src = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
        >>> src[1].weight = src[0].weight
        >>> dst = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
        >>> dst[1].weight = dst[0].weight
        >>> bool(load_state(dst, state_for_save(src))[1].weight.equal(src[0].weight))
        True
    """
    own = model.state_dict()
    tied = tied_names(model)
    missing = [k for k in own if k not in state and not (k in tied and tied[k] in state)]
    extra = [k for k in state if k not in own]
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or bad:
        parts = [f"{label} {items[:3]}" for label, items in
                 (("missing", missing), ("unexpected", extra), ("wrong shape", bad)) if items]
        raise ModelError(f"{source} do not fit the model ({'; '.join(parts)}); check that the model was "
                         "built from the same folder and shrunk to the saved shape")
    model.load_state_dict(state, strict=False)
    return model

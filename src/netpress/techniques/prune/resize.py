"""Rebuild a structurally pruned model from its weights file.

A structurally pruned model is the original architecture with fewer channels, so the
zoo factory builds layers that are too wide for its weights. ``resize_to_state``
shrinks each Conv/Linear/BatchNorm/LayerNorm to the shapes in the state dict before
loading; the file says it needs this with the metadata ``netpress.pruned=structured``,
so a plain shape mismatch (wrong architecture) is still an error.
"""

from __future__ import annotations

import os

import torch
from safetensors import safe_open
from torch import nn

from ...errors import ModelError
from ...io import load_into, load_weights
from ...zoo import build_model

STRUCTURED_KEY = "netpress.pruned"
STRUCTURED_VALUE = "structured"


def _empty_like(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, dtype=t.dtype, device=t.device)


def _resize_param(m: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    old = getattr(m, name)
    if old is None or tuple(old.shape) == shape:
        return
    new = _empty_like(old, shape)
    if isinstance(old, nn.Parameter):
        setattr(m, name, nn.Parameter(new, requires_grad=old.requires_grad))
    else:
        m.register_buffer(name, new)


@torch.no_grad()
def resize_to_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Shrink the layers of ``model`` in place to the tensor shapes of ``state``.

    Example:
        >>> m = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
        >>> st = {"0.weight": torch.zeros(3, 4), "0.bias": torch.zeros(3),
        ...       "1.weight": torch.zeros(2, 3), "1.bias": torch.zeros(2)}
        >>> resize_to_state(m, st)[1].in_features
        3
        >>> dw = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8))
        >>> resize_to_state(dw, {"0.weight": torch.zeros(5, 1, 3, 3)})[0].groups
        5
    """
    for prefix, m in model.named_modules():
        key = f"{prefix}." if prefix else ""
        shapes = {n: tuple(state[key + n].shape) for n, _ in
                  list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
                  if key + n in state}
        if not shapes:
            continue
        if isinstance(m, nn.modules.conv._ConvNd) and "weight" in shapes:
            w = shapes["weight"]
            if m.groups > 1 and m.groups == m.in_channels:  # depthwise: one group a channel,
                m.groups = w[0] // (m.out_channels // m.groups)  # so pruning removes groups
            m.out_channels, m.in_channels = w[0], w[1] * m.groups
        elif isinstance(m, nn.Linear) and "weight" in shapes:
            m.out_features, m.in_features = shapes["weight"]
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and "running_mean" in shapes:
            m.num_features = shapes["running_mean"][0]
        elif isinstance(m, nn.LayerNorm) and "weight" in shapes:
            m.normalized_shape = shapes["weight"]
        else:
            continue
        for n, shape in shapes.items():
            _resize_param(m, n, shape)
    return model


def is_structured(path: str | os.PathLike) -> bool:
    """Whether a safetensors weights file holds a structurally pruned model."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # noqa: BLE001 - unreadable files are reported by load_weights
        return False
    return meta.get(STRUCTURED_KEY) == STRUCTURED_VALUE


def load_pruned_model(spec: str, weights: str | os.PathLike) -> nn.Module:
    """Build ``spec`` and load ``weights``, shrinking layers first when the file holds
    a structurally pruned model.

    Example:
        >>> m = load_pruned_model("lenet5-caffe", "small.safetensors")  # doctest: +SKIP
    """
    model = build_model(spec)
    state = load_weights(weights)
    if is_structured(weights):
        resize_to_state(model, state)
    elif any(k in state and tuple(v.shape) != tuple(state[k].shape)
             for k, v in model.state_dict().items()):
        raise ModelError(
            f"{weights} does not fit {spec} and is not marked as structurally pruned; "
            "check --model, or re-save it with `netpress prune --method structured`"
        )
    load_into(model, state, source=str(weights))
    model.eval()
    return model

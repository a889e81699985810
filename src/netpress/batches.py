"""Model inputs of any structure: a tensor, a tuple of tensors or a dict of tensors.

Images arrive as one tensor; a Hugging Face model takes ``input_ids``, ``attention_mask``
and ``token_type_ids`` as keywords. These helpers index, count and call with either, so
loaders, the training loop, profiling and export never ask which one they hold.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

Inputs = Any  # torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]


def take(inputs: Inputs, index) -> Inputs:
    """Rows ``index`` (a slice or an index tensor) of every tensor in ``inputs``.

    Example:
        >>> take({"a": torch.arange(4)}, slice(1, 3))["a"].tolist()
        [1, 2]
    """
    if isinstance(inputs, dict):
        return {k: v[index] for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return type(inputs)(v[index] for v in inputs)
    return inputs[index]


def count(inputs: Inputs) -> int:
    """Number of examples (the first dimension) in ``inputs``.

    Example:
        >>> count({"input_ids": torch.zeros(3, 7)})
        3
    """
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values())))
    if isinstance(inputs, tuple | list):
        return len(inputs[0])
    return len(inputs)


def call(model: nn.Module, inputs: Inputs):
    """``model(**inputs)`` for a dict, ``model(*inputs)`` for a tuple, else ``model(inputs)``.

    Example:
        >>> call(nn.Identity(), torch.ones(2)).tolist()
        [1.0, 1.0]
    """
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, tuple | list):
        return model(*inputs)
    return model(inputs)


def ordered_inputs(model: nn.Module, example: Inputs) -> Inputs:
    """``example`` with a dict's keys in the order of ``model.forward``'s parameters
    (keys the signature does not name keep their order, after the named ones).

    Example:
        >>> class M(nn.Module):
        ...     def forward(self, input_ids, attention_mask=None): ...
        >>> list(ordered_inputs(M(), {"attention_mask": 1, "input_ids": 2}))
        ['input_ids', 'attention_mask']
    """
    if not isinstance(example, dict):
        return example
    params = list(inspect.signature(model.forward).parameters)
    rank = {n: i for i, n in enumerate(params)}
    keys = sorted(example, key=lambda k: (rank.get(k, len(params)), list(example).index(k)))
    return {k: example[k] for k in keys}


def concat(parts: list[Inputs]) -> Inputs:
    """Concatenate inputs of the same structure along the first dimension."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: torch.cat([p[k] for p in parts]) for k in first}
    if isinstance(first, tuple | list):
        return type(first)(torch.cat([p[i] for p in parts]) for i in range(len(first)))
    return torch.cat(parts)



def inputs_of(batch) -> Inputs:
    """The model inputs of a batch: ``(inputs, targets)`` pairs give their inputs; a tensor
    or a dict of keyword tensors is the inputs itself.

    Example:
        >>> inputs_of((torch.ones(1), torch.zeros(1))).tolist()
        [1.0]
    """
    return batch[0] if isinstance(batch, tuple | list) else batch


def real_tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """A layer's input ``x`` (N, T, …) without the positions where ``mask`` (N, T) is 0
    (padding), as rows; ``x`` unchanged when there is no such mask.

    Example:
        >>> real_tokens(torch.ones(2, 3, 4), torch.tensor([[1, 1, 0], [1, 0, 0]])).shape
        torch.Size([3, 4])
    """
    if mask is not None and x.dim() == 3 and tuple(x.shape[:2]) == tuple(mask.shape):
        return x[mask.bool()]
    return x

"""Turn closed gates into a smaller model: remove output channels/neurons by index with
Torch-Pruning's dependency graph (the next layer's inputs shrink with them), as
``StructuredPrune`` does for its own choices.

Example:
    >>> m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    >>> remove_channels(m, {m[0]: [0, 1, 2]}, torch.zeros(1, 4))
    3
    >>> m[0].out_features, m[2].in_features
    (3, 3)
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn


def remove_channels(model: nn.Module, plan: dict[nn.Module, list[int]], example) -> int:
    """Remove the listed output channels of each layer in ``plan`` (a layer always keeps
    at least one); returns how many were removed.

    ``model`` must hold plain weights (no parametrizations).
    """
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    removed = 0
    for layer, idxs in plan.items():
        width = layer.out_channels if isinstance(layer, nn.modules.conv._ConvNd) else layer.out_features
        idxs = sorted(set(idxs))[:max(0, width - 1)]
        if not idxs:
            continue
        fn = (tp.prune_conv_out_channels if isinstance(layer, nn.modules.conv._ConvNd)
              else tp.prune_linear_out_channels)
        group = graph.get_pruning_group(layer, fn, idxs=idxs)
        if graph.check_pruning_group(group):
            group.prune()
            removed += len(idxs)
    return removed


def rows_of(layer: nn.Module) -> torch.Tensor:
    """The layer's weight viewed as one row per output channel/neuron."""
    return layer.weight.detach().flatten(1)

"""The split every data set in netpress has: train, val, calib, test.

``calib`` is drawn from ``train`` (never from val or test); ``test`` is never used
for calibration or tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """Tensors of one data set: images ``x`` (N, C, H, W) float32 and labels ``y`` int64."""

    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    calib: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, without the batch dimension."""
        return tuple(self.train[0].shape[1:])


def calib_subset(
    x: torch.Tensor, y: torch.Tensor, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``size`` training examples."""
    g = torch.Generator().manual_seed(seed + 7919)
    idx = torch.randperm(len(x), generator=g)[: min(size, len(x))]
    idx, _ = torch.sort(idx)
    return x[idx], y[idx]

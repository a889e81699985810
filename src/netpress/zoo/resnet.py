"""``resnet-small``: a small residual CNN for 28×28 inputs.

It has BatchNorm, residual adds (identity and 1×1 projection shortcuts) and a
channel concat before the head, so structured pruning and export meet a real
graph with coupled layers rather than a plain chain.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual add; a 1×1 projection when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride)
        self.conv2 = _conv_bn(cout, cout, 3, 1)
        self.relu = nn.ReLU()
        self.shortcut = (
            _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x):
        out = self.relu(self.conv1(x))
        return self.relu(self.conv2(out) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """Stem w → block w → block 2w (stride 2) → block 4w (stride 2), w = 16; concat of the
    last block with a pooled skip from the stem, global average pool, fc.

    Example:
        >>> ResNetSmall()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv_bn(1, w, 3), nn.ReLU())
        self.layer1 = BasicBlock(w, w)
        self.layer2 = BasicBlock(w, 2 * w, stride=2)
        self.layer3 = BasicBlock(2 * w, 4 * w, stride=2)
        self.skip = nn.Sequential(nn.AvgPool2d(4), _conv_bn(w, w, 1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(5 * w, num_classes)

    def forward(self, x):
        s = self.stem(x)
        h = self.layer3(self.layer2(self.layer1(s)))
        h = torch.cat([h, self.skip(s)], dim=1)
        return self.fc(self.flatten(self.pool(h)))

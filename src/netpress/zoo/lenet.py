"""The LeNet family used throughout the compression literature.

- ``lenet-300-100``: 784-300-100-10 MLP (Han et al. 2015/2016), 266,610 parameters.
- ``lenet5-caffe``: conv 20@5×5, max-pool, conv 50@5×5, max-pool, fc 500, fc 10 —
  the Caffe variant of Han et al. 2016, 431,080 parameters.
- ``lenet5``: the classic 6/16/120/84 net (LeCun et al. 1998), with padding 2 on
  the first conv so 28×28 inputs give the original 32×32 geometry.
"""

from __future__ import annotations

from torch import nn


def lenet_300_100(num_classes: int = 10) -> nn.Module:
    """784-300-100-10 MLP with ReLU.

    Example:
        >>> sum(p.numel() for p in lenet_300_100().parameters())
        266610
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, num_classes),
    )


class LeNet5Caffe(nn.Module):
    """Conv 20@5×5 → pool → conv 50@5×5 → pool → fc 500 → fc 10.

    Example:
        >>> sum(p.numel() for p in LeNet5Caffe().parameters())
        431080
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class LeNet5(nn.Module):
    """Classic LeNet-5: conv 6@5×5 (pad 2) → pool → conv 16@5×5 → pool → 120 → 84 → 10.

    Example:
        >>> sum(p.numel() for p in LeNet5().parameters())
        61706
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))

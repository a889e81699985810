"""scikit-learn's 8×8 digits, upsampled to 28×28 so every zoo model accepts them.

1,797 images, split by a seeded permutation that does not depend on the run's seed:
1,197 train, 300 val, 300 test; calibration is drawn from train. Small and offline:
the data set for fast tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .splits import Split, calib_subset

_SPLIT_SEED = 1234


def load_digits_split(seed: int = 0, calib_size: int = 256) -> Split:
    """Load digits as 28×28 single-channel images with a fixed split.

    Example:
        >>> s = load_digits_split()
        >>> s.train[0].shape, len(s.val[0]), len(s.test[0])
        (torch.Size([1197, 1, 28, 28]), 300, 300)
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(_SPLIT_SEED))
    x, y = x[perm].contiguous(), y[perm].contiguous()
    train, val, test = (x[:1197], y[:1197]), (x[1197:1497], y[1197:1497]), (x[1497:], y[1497:])
    return Split(
        name="digits",
        train=train,
        val=val,
        test=test,
        calib=calib_subset(*train, calib_size, seed),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
    )

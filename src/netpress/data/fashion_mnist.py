"""Fashion-MNIST from the gzipped IDX files of Debian's dataset-fashion-mnist.

Split: the first 55,000 training images train, the last 5,000 are validation,
the 10,000 test images are only ever used for final evaluation; the calibration
subset (1,024 images by default) is drawn from the 55,000 training images.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import DataError
from .idx import read_idx
from .splits import Split, calib_subset

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MEAN, STD = 0.2860, 0.3530
VAL_SIZE = 5000


def data_dir(given: str | os.PathLike | None = None) -> Path:
    """The folder holding the IDX files: ``given``, else $NETPRESS_DATA_DIR, else the Debian path."""
    return Path(given or os.environ.get("NETPRESS_DATA_DIR") or DEFAULT_DIR)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"Fashion-MNIST file {stem}.gz not found in {folder}; install it with "
        "`apt-get install -y dataset-fashion-mnist` or pass --data-dir DIR"
    )


def _images(arr, name: str) -> torch.Tensor:
    if arr.ndim != 3 or arr.shape[1:] != (28, 28):
        raise DataError(f"{name}: expected N×28×28 images, got shape {arr.shape}")
    x = torch.from_numpy(arr.copy()).float().div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1)


def _labels(arr, name: str, n: int) -> torch.Tensor:
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{name}: expected {n} labels, got shape {arr.shape}")
    if arr.max() > 9:
        raise DataError(f"{name}: label {int(arr.max())} out of range 0..9")
    return torch.from_numpy(arr.astype("int64"))


def load_fashion_mnist(
    folder: str | os.PathLike | None = None, seed: int = 0, calib_size: int = 1024
) -> Split:
    """Load Fashion-MNIST with netpress's fixed split.

    Example:
        >>> split = load_fashion_mnist()  # doctest: +SKIP
        >>> split.train[0].shape, split.val[0].shape, split.test[0].shape  # doctest: +SKIP
        (torch.Size([55000, 1, 28, 28]), torch.Size([5000, 1, 28, 28]), torch.Size([10000, 1, 28, 28]))
    """
    d = data_dir(folder)
    if not d.is_dir():
        raise DataError(
            f"Fashion-MNIST folder {d} does not exist; install it with "
            "`apt-get install -y dataset-fashion-mnist` or pass --data-dir DIR"
        )
    paths = {k: _find(d, v) for k, v in FILES.items()}
    tx = _images(read_idx(paths["train_x"]), str(paths["train_x"]))
    ty = _labels(read_idx(paths["train_y"]), str(paths["train_y"]), len(tx))
    ex = _images(read_idx(paths["test_x"]), str(paths["test_x"]))
    ey = _labels(read_idx(paths["test_y"]), str(paths["test_y"]), len(ex))
    if len(tx) <= VAL_SIZE:
        raise DataError(f"{paths['train_x']}: only {len(tx)} training images")
    train = (tx[:-VAL_SIZE], ty[:-VAL_SIZE])
    val = (tx[-VAL_SIZE:], ty[-VAL_SIZE:])
    return Split(
        name="fashion-mnist",
        train=train,
        val=val,
        test=(ex, ey),
        calib=calib_subset(*train, calib_size, seed),
        num_classes=10,
        class_names=CLASSES,
    )

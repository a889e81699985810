"""Batch loaders over in-memory tensors, and resolution of ``--data`` specs.

``ArrayLoader`` slices tensors directly (no per-example Python calls), so an epoch
of Fashion-MNIST costs little beyond the model itself; its shuffle order depends only
on the seed and the epoch, which makes training reproducible to the byte.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..batches import count, take
from ..errors import DataError
from ..resolve import resolve_callable
from .splits import Split


class ArrayLoader:
    """Iterate ``(x, y)`` batches over tensors; shuffled deterministically per epoch.

    ``x`` may be one tensor, a tuple or a dict of tensors (e.g. ``input_ids`` and
    ``attention_mask``); every tensor is sliced along its first dimension.

    Example:
        >>> xs, ys = torch.zeros(10, 1, 2, 2), torch.arange(10)
        >>> [len(y) for _, y in ArrayLoader(xs, ys, batch_size=4)]
        [4, 4, 2]
    """

    def __init__(
        self,
        x,
        y: torch.Tensor,
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if count(x) != len(y):
            raise DataError(f"{count(x)} inputs but {len(y)} labels")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def __len__(self) -> int:
        n = count(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        """Number of examples in one pass."""
        return count(self.x)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = count(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=g)
            self.epoch += 1
        else:
            order = None
        for i in range(len(self)):
            sl = slice(i * self.batch_size, min(n, (i + 1) * self.batch_size))
            if order is None:
                yield take(self.x, sl), self.y[sl]
            else:
                idx = order[sl]
                yield take(self.x, idx), self.y[idx]


BUILTIN = ("fashion-mnist", "digits")


def load_split(
    spec: str, data_dir: str | None = None, seed: int = 0
) -> Split:
    """Resolve a ``--data`` spec: ``fashion-mnist``, ``digits``, or ``package.module:function``.

    A user function is called as ``function(seed=seed)`` and must return a ``Split``.

    Example:
        >>> load_split("digits").name
        'digits'
    """
    if spec == "fashion-mnist":
        from .fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(data_dir, seed=seed)
    if spec == "digits":
        from .digits import load_digits_split

        return load_digits_split(seed=seed)
    if ":" in spec:
        fn = resolve_callable(spec, DataError, "data function")
        try:
            split = fn(seed=seed)
        except TypeError as e:
            raise DataError(f"{spec} must accept a seed= keyword and return a Split ({e})") from e
        if not isinstance(split, Split):
            raise DataError(
                f"{spec} returned {type(split).__name__}; it must return netpress.data.Split"
            )
        return split
    raise DataError(
        f"unknown data set {spec!r}; use one of {', '.join(BUILTIN)} or package.module:function"
    )

"""Batch loaders over in-memory tensors, and resolution of ``--data`` specs.

``ArrayLoader`` slices tensors directly (no per-example Python calls), so an epoch
of Fashion-MNIST costs little beyond the model itself; its shuffle order depends only
on the seed and the epoch, which makes training reproducible to the byte.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..batches import Inputs, count, take
from ..errors import DataError
from ..resolve import resolve_callable
from .splits import Split


def token_lengths(inputs: Inputs) -> torch.Tensor | None:
    """Each example's length up to its last real token (``attention_mask``), or None for
    inputs that are not padded token tensors.

    Example:
        >>> token_lengths({"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])}).tolist()
        [2, 1]
    """
    mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or not len(mask):
        return None
    real = mask != 0
    last = mask.shape[1] - real.flip(1).int().argmax(1)
    return torch.where(real.any(1), last, torch.zeros_like(last))


def trim_padding(inputs: Inputs) -> Inputs:
    """Token inputs cut to their longest real text (``attention_mask``); others unchanged.

    Example:
        >>> mask = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
        >>> trim_padding({"input_ids": torch.ones(2, 5), "attention_mask": mask})["input_ids"].shape
        torch.Size([2, 2])
    """
    lengths = token_lengths(inputs)
    if lengths is None:
        return inputs
    width = inputs["attention_mask"].shape[1]
    keep = max(1, int(lengths.max()))
    return {k: v[:, :keep] if v.dim() >= 2 and v.shape[1] == width else v
            for k, v in inputs.items()}


class ArrayLoader:
    """Iterate ``(x, y)`` batches over tensors; shuffled deterministically per epoch.

    ``x`` may be one tensor, a tuple or a dict of tensors (e.g. ``input_ids`` and
    ``attention_mask``); every tensor is sliced along its first dimension.

    Token inputs padded to a common width ``seq_len`` may pass ``lengths`` (each
    example's tokens, padding excluded). Each batch is then cut to its longest example,
    and examples of like length are batched together: in order of length without
    shuffling, and shuffled within windows of ``bucket`` batches (then the batches
    shuffled) when training. Short texts then cost what they are, not what the longest
    text of the part costs. ``token_targets`` cuts targets of width ``seq_len`` (next-token
    labels) with the inputs. ``gather`` puts the per-batch results of a pass back in the
    stored order (and at full width).

    Example:
        >>> xs, ys = torch.zeros(10, 1, 2, 2), torch.arange(10)
        >>> [len(y) for _, y in ArrayLoader(xs, ys, batch_size=4)]
        [4, 4, 2]
        >>> toks = {"input_ids": torch.ones(3, 5, dtype=torch.long)}
        >>> lo = ArrayLoader(toks, torch.arange(3), 2, lengths=torch.tensor([2, 5, 1]), seq_len=5)
        >>> [(tuple(x["input_ids"].shape), y.tolist()) for x, y in lo]
        [((2, 5), [1, 0]), ((1, 1), [2])]
        >>> lo.gather([y for _, y in lo]).tolist()
        [0, 1, 2]
    """

    def __init__(
        self,
        x,
        y: torch.Tensor,
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        lengths: torch.Tensor | None = None,
        seq_len: int | None = None,
        token_targets: bool = False,
        bucket: int = 50,
    ) -> None:
        if count(x) != len(y):
            raise DataError(f"{count(x)} inputs but {len(y)} labels")
        if lengths is not None and (len(lengths) != len(y) or seq_len is None):
            raise ValueError("lengths needs one entry per example and the padded width seq_len")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.lengths, self.seq_len, self.token_targets = lengths, seq_len, token_targets
        self.bucket = bucket
        self.epoch = 0
        self.order: torch.Tensor | None = None  # examples in the order the last pass gave them

    @classmethod
    def of_tokens(cls, x: dict, y: torch.Tensor, batch_size: int = 256, **kw) -> ArrayLoader:
        """A loader of token inputs batched by length: ``lengths`` and ``seq_len`` read
        from ``x["attention_mask"]``."""
        return cls(x, y, batch_size, lengths=token_lengths(x),
                   seq_len=x["attention_mask"].shape[1], **kw)

    def __len__(self) -> int:
        n = count(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        """Number of examples in one pass."""
        return count(self.x)

    def _batches(self) -> list[torch.Tensor] | None:
        """The index tensor of each batch of this pass (None: contiguous, stored order)."""
        n, bs = count(self.x), self.batch_size
        if not self.shuffle:
            if self.lengths is None:
                return None
            order = torch.sort(self.lengths, descending=True, stable=True).indices
            return [order[i * bs:(i + 1) * bs] for i in range(len(self))]
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(n, generator=g)
        if self.lengths is None:
            return [order[i * bs:(i + 1) * bs] for i in range(len(self))]
        window = bs * self.bucket
        chunks = [order[i:i + window] for i in range(0, n, window)]
        order = torch.cat([c[torch.sort(self.lengths[c], stable=True).indices] for c in chunks])
        batches = [order[i * bs:(i + 1) * bs] for i in range(len(self))]
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]

    def _cut(self, xb, yb, idx: torch.Tensor):
        if self.lengths is None:
            return xb, yb
        width = max(1, int(self.lengths[idx].max()))
        if width >= self.seq_len:
            return xb, yb

        def cut(v):
            return v[:, :width] if v.dim() >= 2 and v.shape[1] == self.seq_len else v

        if isinstance(xb, dict):
            xb = {k: cut(v) for k, v in xb.items()}
        elif isinstance(xb, tuple | list):
            xb = type(xb)(cut(v) for v in xb)
        else:
            xb = cut(xb)
        return xb, cut(yb) if self.token_targets else yb

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = count(self.x)
        batches = self._batches()
        if batches is None:
            self.order = None
            for i in range(len(self)):
                sl = slice(i * self.batch_size, min(n, (i + 1) * self.batch_size))
                yield take(self.x, sl), self.y[sl]
            return
        self.order = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.long)
        for idx in batches:
            yield self._cut(take(self.x, idx), self.y[idx], idx)

    def gather(self, pieces: list[torch.Tensor], fill: float = float("nan")) -> torch.Tensor:
        """The per-batch results of the last whole pass, concatenated in stored order.

        Results cut to a batch's width (token-level outputs or targets) are padded back
        to ``seq_len`` with ``fill``.
        """
        if self.lengths is not None and self.token_targets:
            padded = []
            for p in pieces:
                if p.dim() >= 2 and p.shape[1] < self.seq_len:
                    full = torch.full((p.shape[0], self.seq_len, *p.shape[2:]), fill, dtype=p.dtype)
                    full[:, :p.shape[1]] = p
                    p = full
                padded.append(p)
            pieces = padded
        out = torch.cat(pieces)
        if self.order is None:
            return out
        if len(self.order) != len(out):
            raise ValueError("gather needs the results of one whole pass (drop_last=False)")
        restored = torch.empty_like(out)
        restored[self.order] = out
        return restored


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

"""Data-parallel training under ``torchrun``: the process group, sharded batches, DDP.

netpress never launches processes itself: ``torchrun`` (or ``netpress compress --nproc N``,
which calls it) starts N copies of the command with ``RANK``/``WORLD_SIZE`` set, and
``init_from_env`` joins them in one process group (gloo on CPU, NCCL with GPUs).
Every rank runs the same recipe on the same seeded data; inside ``train.fit`` each global
batch is cut into N interleaved shards (``ShardedLoader``) and DistributedDataParallel
averages the gradients, weighted so that the update equals the one-process update of the
whole batch (up to float summation order). Only rank 0 writes files; rank 0's model
bytes are broadcast after every stage, so all ranks always hold the same model.

Example:
    >>> world_size(), rank(), is_main()
    (1, 0, True)
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn

from ..batches import Inputs, count, take
from ..data.loaders import ArrayLoader
from ..errors import NetpressError


class DistributedError(NetpressError):
    """A distributed run cannot start or lost one of its processes."""


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes training together (1 outside torchrun)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank (0 outside torchrun)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on the process that writes files and prints results (rank 0)."""
    return rank() == 0


def init_from_env(timeout_s: float = 300.0) -> bool:
    """Join the process group ``torchrun`` describes in the environment; False when the
    process was not started by torchrun (or with one process).

    The backend is NCCL when CUDA is available, gloo otherwise. A collective that waits
    longer than ``timeout_s`` for a peer fails instead of hanging.

    Example:
        >>> init_from_env()  # not under torchrun
        False
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"cannot join the torchrun process group ({e}); start the "
                               "command with torchrun or `netpress compress --nproc N`") from e
    return True


def shutdown() -> None:
    """Leave the process group (no-op outside one), after every rank got here: a rank that
    tears gloo down while a peer still talks to it aborts."""
    if dist.is_available() and dist.is_initialized():
        import gc

        gc.collect()  # DDP reducers (and their hooks' futures) go before the group
        dist.barrier()
        dist.destroy_process_group()


class ShardedLoader:
    """This rank's share of every batch of ``loader``: examples ``rank, rank + N, …``.

    All ranks walk the same seeded batch order, so together they see exactly the batches
    one process would. ``weight`` is this shard's share of the global batch times N: the
    factor that makes DDP's gradient mean equal the whole batch's mean gradient. Batches
    smaller than N are skipped by every rank alike (so no rank waits for another).

    Example:
        >>> ld = ArrayLoader(torch.zeros(5, 2), torch.arange(5), batch_size=4)
        >>> [y.tolist() for _, y in ShardedLoader(ld, rank=1, world=2)]
        [[1, 3]]
    """

    def __init__(self, loader: ArrayLoader, rank: int, world: int) -> None:
        self.loader, self.rank, self.world = loader, rank, world
        self.weight = 1.0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Inputs, torch.Tensor]]:
        for x, y in self.loader:
            n = count(x)
            if n < self.world:
                continue
            sl = slice(self.rank, None, self.world)
            part = take(x, sl)
            self.weight = count(part) * self.world / n
            yield part, y[sl]


def unused_parameters(model: nn.Module, loss_fn, x: Inputs, y: torch.Tensor) -> list[nn.Parameter]:
    """Trainable parameters that get no gradient from ``loss_fn`` on one batch (a pooler
    whose output the loss ignores). Probed in eval mode (no dropout draws, no statistics
    updated), gradients cleared afterwards.

    Example:
        >>> m = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)})
        >>> len(unused_parameters(m, lambda m, x, y: m["a"](x).sum(), torch.ones(1, 2), None))
        2
    """
    was = model.training
    model.eval()
    trainable = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in trainable]
    for p in trainable:
        p.grad = None
    loss_fn(model, x, y).backward()
    unused = [p for p in trainable if p.grad is None]
    for p, g in zip(trainable, saved, strict=True):
        p.grad = g
    model.train(was)
    return unused


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel (CPU: no device ids). Rank 0's parameters and
    buffers are broadcast to every rank when it is built. Every trainable parameter must
    get a gradient each step (``fit`` freezes those ``unused_parameters`` finds): DDP's
    search for unused parameters issues collectives of its own that can interleave with
    PowerSGD's, which gloo does not allow.

    Example:
        >>> wrap(nn.Linear(2, 2))  # doctest: +SKIP
    """
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, find_unused_parameters=False)


def all_mean(value: float) -> float:
    """The mean of ``value`` over all ranks (``value`` itself outside a group)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / world_size()


def broadcast_bytes(data: bytes | None) -> bytes:
    """Rank 0's ``data`` on every rank (as a uint8 tensor: nothing is pickled).

    Example:
        >>> broadcast_bytes(b"abc")  # one process: unchanged
        b'abc'
    """
    if not active():
        assert data is not None
        return data
    size = torch.tensor([len(data) if is_main() and data is not None else 0], dtype=torch.int64)
    dist.broadcast(size, 0)
    buf = (torch.frombuffer(bytearray(data), dtype=torch.uint8) if is_main() and data
           else torch.zeros(int(size), dtype=torch.uint8))
    if int(size):
        dist.broadcast(buf, 0)
    return bytes(buf.numpy().tobytes())


def broadcast_int(value: int) -> int:
    """Rank 0's ``value`` on every rank."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.broadcast(t, 0)
    return int(t)


def barrier() -> None:
    """Wait for every rank (no-op outside a group)."""
    if active():
        dist.barrier()

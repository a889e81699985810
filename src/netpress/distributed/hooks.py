"""Gradient compression for DDP: communication hooks chosen in a recipe, with byte counts.

A recipe's ``distributed:`` mapping is a ``CommHook``: ``hook: allreduce`` (plain fp32
all-reduce, the default), ``fp16`` / ``bf16`` (torch's compress hooks: half the bytes),
``powersgd`` (torch's PowerSGD with error feedback, rank ``rank``) or ``topk`` (netpress's
own: each rank sends the ``ratio`` largest entries of gradient + residual, with error
feedback). Every hook is wrapped so that it counts the payload bytes this rank hands to
collectives per step (values and indices; what a ring all-reduce moves on the wire is
about 2(N-1)/N times that): ``HookStats.bytes_per_step``.

Example:
    >>> CommHook("powersgd", rank=2).to_dict()["hook"]
    'powersgd'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist

from ..config import Config
from ..errors import ConfigError

HOOKS = ("allreduce", "fp16", "bf16", "powersgd", "topk")


@dataclass(frozen=True)
class CommHook(Config):
    """How DDP ranks exchange gradients.

    Example:
        >>> CommHook("topk", ratio=0.01).ratio
        0.01
    """

    hook: Literal["allreduce", "fp16", "bf16", "powersgd", "topk"] = "allreduce"
    rank: int = 2  # PowerSGD: rank of the low-rank approximation of each gradient matrix
    ratio: float = 0.01  # top-k: fraction of each bucket's entries sent per step, 0..1
    start_iter: int = 2  # PowerSGD: plain all-reduce for the first steps (>= 2: error feedback)

    def validate(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"rank must be >= 1, got {self.rank}")
        if not 0 < self.ratio <= 1:
            raise ConfigError(f"ratio must be in (0, 1], got {self.ratio}")
        if self.start_iter < 2:
            raise ConfigError(f"start_iter must be >= 2 (PowerSGD's error feedback needs a "
                              f"plain first step), got {self.start_iter}")


@dataclass
class HookStats:
    """Payload bytes handed to collectives by this rank, and steps seen.

    Example:
        >>> s = HookStats(); s.bytes_sent, s.steps = 800, 4; s.bytes_per_step
        200.0
    """

    bytes_sent: int = 0
    steps: int = 0
    dense_bytes: int = 0  # what plain fp32 all-reduce would have sent in the same steps
    residuals: dict = field(default_factory=dict)

    @property
    def bytes_per_step(self) -> float:
        return self.bytes_sent / max(1, self.steps)

    @property
    def dense_bytes_per_step(self) -> float:
        return self.dense_bytes / max(1, self.steps)


def _count(stats: HookStats, bucket, sent: int) -> None:
    stats.bytes_sent += sent
    stats.dense_bytes += bucket.buffer().numel() * 4
    if bucket.is_last():
        stats.steps += 1


def _allreduce_mean(tensor: torch.Tensor) -> torch.futures.Future:
    fut = dist.all_reduce(tensor, async_op=True).get_future()
    world = dist.get_world_size()
    return fut.then(lambda f: f.value()[0].div_(world))


def topk_compress(grad: torch.Tensor, residual: torch.Tensor, k: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``k`` of ``grad + residual`` by magnitude: ``(int32 indices, values, new residual)``;
    the new residual holds everything not sent (error feedback).

    Example:
        >>> i, v, r = topk_compress(torch.tensor([0.1, -3.0, 2.0]), torch.zeros(3), 1)
        >>> i.tolist(), v.tolist(), r.tolist()
        ([1], [-3.0], [0.10000000149011612, 0.0, 2.0])
    """
    full = grad + residual
    idx = full.abs().topk(k, sorted=False).indices
    idx = idx.sort().values
    vals = full[idx]
    rest = full.clone()
    rest[idx] = 0
    return idx.to(torch.int32), vals, rest


def topk_hook(state: tuple[HookStats, float], bucket):  # no annotation: DDP checks it
    """DDP hook: all-gather every rank's top-k (values and int32 indices) of gradient plus
    residual, sum them into the dense bucket and divide by the world size."""
    stats, ratio = state
    buf = bucket.buffer()
    n = buf.numel()
    k = max(1, math.ceil(ratio * n))
    params = bucket.parameters()  # residuals per parameter: DDP may rebuild its buckets
    res = torch.cat([stats.residuals.get(id(p), torch.zeros(p.numel())).flatten()
                     for p in params]) if params else torch.zeros_like(buf)
    idx, vals, rest = topk_compress(buf, res, k)
    if params:
        for p, r in zip(params, rest.split([p.numel() for p in params]), strict=True):
            stats.residuals[id(p)] = r
    world = dist.get_world_size()
    all_idx = [torch.empty_like(idx) for _ in range(world)]
    all_vals = [torch.empty_like(vals) for _ in range(world)]
    dist.all_gather(all_idx, idx)
    dist.all_gather(all_vals, vals)
    dense = torch.zeros_like(buf)
    for i, v in zip(all_idx, all_vals, strict=True):
        dense.index_add_(0, i.long(), v)
    buf.copy_(dense.div_(world))
    _count(stats, bucket, k * (idx.element_size() + vals.element_size()))
    fut: torch.futures.Future = torch.futures.Future()
    fut.set_result(buf)
    return fut


def _powersgd_bytes(ps_state, bucket, r: int) -> int:
    """The bytes PowerSGD hands to all-reduce for ``bucket`` this step: the uncompressed
    tensors (vectors, and matrices too small to gain) plus P and Q of the others; before
    ``start_powerSGD_iter`` the whole bucket."""
    if ps_state.iter < ps_state.start_powerSGD_iter:
        return bucket.buffer().numel() * 4
    total = 0
    for g in bucket.gradients():
        if g.dim() <= 1:
            total += g.numel()
            continue
        rows, cols = g.shape[0], g.numel() // g.shape[0]
        rr = min(rows, cols, r)
        if rows * cols >= (rows + cols) * rr * ps_state.min_compression_rate:
            total += (rows + cols) * rr
        else:
            total += rows * cols
    return total * 4


def register_hook(ddp_model, cfg: CommHook) -> HookStats:
    """Install ``cfg``'s hook on a DistributedDataParallel model; returns its counters.

    Example:
        >>> stats = register_hook(ddp, CommHook("fp16"))  # doctest: +SKIP
    """
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd

    stats = HookStats()
    if cfg.hook == "topk":
        ddp_model.register_comm_hook((stats, cfg.ratio), topk_hook)
        return stats
    if cfg.hook == "powersgd":
        ps = psgd.PowerSGDState(process_group=None, matrix_approximation_rank=cfg.rank,
                                start_powerSGD_iter=cfg.start_iter, use_error_feedback=True,
                                warm_start=True, random_seed=0)

        def powersgd(state, bucket):
            _count(stats, bucket, _powersgd_bytes(state, bucket, cfg.rank))
            # Waited for here: PowerSGD issues its P and Q all-reduces from future callbacks,
            # which with several buckets interleave differently on each rank, and gloo
            # aborts on the mismatch. Waiting keeps every rank's collectives in bucket order.
            done: torch.futures.Future = torch.futures.Future()
            done.set_result(psgd.powerSGD_hook(state, bucket).wait())
            return done

        ddp_model.register_comm_hook(ps, powersgd)
        return stats
    half = {"fp16": (default_hooks.fp16_compress_hook, 2),
            "bf16": (default_hooks.bf16_compress_hook, 2)}.get(cfg.hook)

    def counted(state, bucket):
        if half is None:
            _count(stats, bucket, bucket.buffer().numel() * 4)
            return _allreduce_mean(bucket.buffer())
        _count(stats, bucket, bucket.buffer().numel() * half[1])
        return half[0](state, bucket)

    ddp_model.register_comm_hook(None, counted)
    return stats

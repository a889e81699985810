"""Run under torchrun by test_hooks.py: each hook's averaged gradient against a reference
all-reduce of the same per-rank gradients; rank 0 writes the errors and byte counts."""

from __future__ import annotations

import json
import math
import sys

import torch
import torch.distributed as dist
from torch import nn

from netpress.distributed import ddp
from netpress.distributed.hooks import CommHook, register_hook, topk_compress

STEPS = 4


def local_grad(step: int, rank: int, low_rank: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 * step + rank)
    if low_rank:  # every rank's gradient a multiple of one u v^T: the mean has rank 1
        u = torch.randn(16, generator=torch.Generator().manual_seed(step))
        v = torch.randn(32, generator=torch.Generator().manual_seed(step + 50))
        return (1.0 + rank) * torch.outer(u, v)
    return torch.randn(16, 32, generator=g)


def run(cfg: CommHook, low_rank: bool) -> dict:
    torch.manual_seed(0)
    model = nn.Linear(32, 16)  # the bias: a vector PowerSGD all-reduces uncompressed
    net = ddp.wrap(model)
    stats = register_hook(net, cfg)
    world, rank = dist.get_world_size(), dist.get_rank()
    residual = torch.zeros(16 * 32)
    errors = []
    for step in range(STEPS):
        model.zero_grad()
        target = local_grad(step, rank, low_rank)
        # a loss whose gradient with respect to the weight is exactly `target`
        x = torch.ones(1, 32)
        out = net(x)
        loss = (out.sum() * 0) + (net.module.weight * target).sum()
        loss.backward()
        got = model.weight.grad.clone()
        grads = [torch.zeros_like(target) for _ in range(world)]
        dist.all_gather(grads, target)
        if cfg.hook == "topk":  # reference: the mean of every rank's top-k of grad + residual
            # k counts the whole bucket (weight and bias); the bias gradient is zero
            k = min(target.numel(), math.ceil(cfg.ratio * sum(p.numel() for p in model.parameters())))
            idx, vals, residual = topk_compress(target.flatten(), residual, k)
            all_i = [torch.empty_like(idx) for _ in range(world)]
            all_v = [torch.empty_like(vals) for _ in range(world)]
            dist.all_gather(all_i, idx)
            dist.all_gather(all_v, vals)
            dense = torch.zeros(target.numel())
            for i, v in zip(all_i, all_v, strict=True):
                dense.index_add_(0, i.long(), v)
            ref = (dense / world).view_as(target)
        else:
            ref = torch.stack(grads).mean(0)
        errors.append(float((got - ref).abs().max() / ref.abs().max()))
    return {"hook": cfg.hook, "max_rel_error": max(errors), "errors": errors,
            "bytes_per_step": stats.bytes_per_step, "steps": stats.steps,
            "allreduce_bytes_per_step": stats.dense_bytes_per_step}


def run_buckets() -> dict:
    """PowerSGD over several buckets (one per parameter): its callbacks' collectives must
    stay in the same order on every rank (gloo aborts otherwise)."""
    from torch.nn.parallel import DistributedDataParallel

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 16), nn.Linear(16, 8))
    net = DistributedDataParallel(model, bucket_cap_mb=0.0001)
    register_hook(net, CommHook("powersgd", rank=1))
    world, rank = dist.get_world_size(), dist.get_rank()
    errors = []
    for step in range(STEPS):
        model.zero_grad()
        targets = [(1.0 + rank) * torch.outer(torch.randn(m.out_features, generator=torch.Generator(
            ).manual_seed(step + 10 * i)), torch.randn(m.in_features, generator=torch.Generator(
            ).manual_seed(step + 10 * i + 5))) for i, m in enumerate(model)]
        out = net(torch.ones(1, 32))
        loss = out.sum() * 0 + sum((m.weight * t).sum() for m, t in zip(model, targets, strict=True))
        loss.backward()
        for m, t in zip(model, targets, strict=True):
            ref = t / (1.0 + rank) * sum(1.0 + r for r in range(world)) / world
            errors.append(float((m.weight.grad - ref).abs().max() / ref.abs().max()))
    return {"hook": "powersgd-buckets", "max_rel_error": max(errors), "steps": STEPS,
            "buckets": len(list(model.parameters()))}


def main() -> None:
    assert ddp.init_from_env()
    torch.set_num_threads(1)
    only = sys.argv[2] if len(sys.argv) > 2 else None
    cases = [(CommHook("allreduce"), False), (CommHook("fp16"), False),
             (CommHook("bf16"), False), (CommHook("topk", ratio=1.0), False),
             (CommHook("topk", ratio=0.1), False), (CommHook("powersgd", rank=1), True)]
    out = [run(cfg, low) for cfg, low in cases if only in (None, cfg.hook)]
    if only in (None, "powersgd-buckets"):
        out.append(run_buckets())
    if ddp.is_main():
        with open(sys.argv[1], "w") as f:
            json.dump(out, f)
    ddp.shutdown()


if __name__ == "__main__":
    main()

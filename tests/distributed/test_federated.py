"""Federated fine-tuning on Flower with 3 tiny clients: non-identical shards, compressed
updates with their exact byte counts, FedAvg that learns, and an artifact at the end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

pytest.importorskip("flwr")

from netpress.context import Context  # noqa: E402
from netpress.distributed.federated import FedConfig, run_federated  # noqa: E402
from netpress.distributed.updates import compress_update, decode_update, dirichlet_split  # noqa: E402
from netpress.encode.artifact import artifact_bytes, decode_artifact  # noqa: E402


def _model(n_in: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, 10))


def test_dirichlet_shards_are_not_identical(digits):
    y = digits.train[1]
    shards = dirichlet_split(y, 3, alpha=0.3, seed=0)
    assert sorted(torch.cat(shards).tolist()) == list(range(len(y)))  # a partition
    hist = torch.stack([torch.bincount(y[s], minlength=10).float() / len(s) for s in shards])
    assert float((hist[0] - hist[1]).abs().sum()) > 0.3  # class mixes differ


def test_error_feedback_sends_everything_eventually():
    u = {"w": torch.tensor([3.0, 0.2, -0.1, 1.0])}
    arrays, res = compress_update(u, {}, ratio=0.25, bits=8)
    sent = decode_update(arrays, {"w": (4,)})["w"]
    assert sent.tolist() == [3.0, 0.0, 0.0, 0.0]
    assert torch.allclose(sent + res["w"], u["w"])  # nothing lost: the rest is the residual


def test_flower_fedavg_with_compressed_updates(digits):
    n_in = digits.train[0][0].numel()
    ctx = Context(digits)
    start = _model(n_in)
    base = ctx.evaluate(start)
    dense = run_federated(start, digits, FedConfig(clients=3, rounds=2, alpha=0.5, lr=3e-3))
    small = run_federated(start, digits, FedConfig(clients=3, rounds=2, alpha=0.5, lr=3e-3,
                                                   bits=4, ratio=0.1))
    params = sum(p.numel() for p in start.parameters())
    assert dense.bytes_up == dense.dense_bytes_up == 3 * 2 * 4 * params  # fp32 FedAvg
    # 4-bit top-10 %: per tensor a bitmap (1 bit per entry), packed codes and one fp32 scale
    per = sum((p.numel() + 7) // 8 + math.ceil(math.ceil(p.numel() / 10) / 2) + 4
              for p in start.parameters())
    assert small.bytes_up == 3 * 2 * (per + 4)  # + the bit width
    assert dense.bytes_up / small.bytes_up > 20
    assert dense.val_accuracy[-1] > base + 0.3 and small.val_accuracy[-1] > base + 0.2
    assert len(small.val_accuracy) == 2 and sum(small.shard_sizes) == digits.train[1].numel()
    art = artifact_bytes(small.model, "fed", example=digits.test[0][:1])
    header, state = decode_artifact(art)  # the FedAvg model as a netpress artifact
    assert torch.equal(state["3.weight"], small.model[3].weight.detach())

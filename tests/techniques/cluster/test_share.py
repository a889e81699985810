import pytest
import torch
from torch import nn

from netpress import Context, bake, compress
from netpress.config import Config
from netpress.errors import ConfigError
from netpress.techniques.cluster import (
    LayerBits,
    SharedWeight,
    WeightShare,
    codebook_params,
    share_layer,
)


def _pruned_mlp():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        for lin in (m[1], m[3]):
            w = lin.weight
            w[w.abs() < w.abs().quantile(0.7)] = 0.0
    return m


def test_share_layer_keeps_zeros_and_limits_values():
    m = _pruned_mlp()
    zeros = m[1].weight == 0
    share_layer(m[1], bits=3)
    w = m[1].weight.detach()
    assert (w[zeros] == 0).all() and (w[~zeros] != 0).all()
    assert w[~zeros].unique().numel() <= 8


def test_centroid_gradient_is_sum_of_member_gradients():
    m = _pruned_mlp()
    p = share_layer(m[1], bits=2)
    x = torch.randn(5, 1, 8, 8)
    m(x).pow(2).sum().backward()
    # the same loss on a plain copy of the shared weight gives per-weight gradients
    plain = nn.Linear(64, 32)
    with torch.no_grad():
        plain.weight.copy_(m[1].weight)
        plain.bias.copy_(m[1].bias)
    ref = nn.Sequential(nn.Flatten(), plain, nn.ReLU(), m[3])
    ref(x).pow(2).sum().backward()
    g = plain.weight.grad
    expected = torch.zeros(p.centroids.numel()).index_add_(0, p.labels[p.mask], g[p.mask])
    torch.testing.assert_close(p.centroids.grad, expected)


def test_finetune_keeps_assignments_and_mask(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    ctx = Context(digits, batch_size=64, threads=1)
    ctx.finetune(model, 2, lr=1e-2)
    with torch.no_grad():
        model[1].weight[:, ::2] = 0.0
    compress(model, [WeightShare(bits=3, finetune_epochs=0)], ctx)
    p = model[1].parametrizations.weight[0]
    labels, mask, before = p.labels.clone(), p.mask.clone(), p.centroids.detach().clone()
    acc0 = ctx.evaluate(model)
    ctx.finetune(model, 2, lr=1e-3, params=codebook_params(model))
    assert torch.equal(p.labels, labels) and torch.equal(p.mask, mask)
    assert not torch.equal(p.centroids.detach(), before)  # the codebook did train
    w = model[1].weight.detach()
    assert (w[:, ::2] == 0).all()
    assert set(w[mask].unique().tolist()) <= set(p.centroids.detach().tolist())
    assert ctx.evaluate(model) >= acc0 - 0.02
    bake(model)
    assert not isinstance(getattr(model[1], "parametrizations", None), nn.ModuleDict)
    assert model[1].weight[mask].unique().numel() <= 8


def test_config_roundtrip_and_validation():
    cfg = WeightShare(bits=4, conv_bits=6, init="density", finetune_epochs=1,
                      overrides=(LayerBits("re:fc.*", 3),))
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        WeightShare(overrides=(LayerBits("fc1", 0),))
    with pytest.raises(ConfigError):
        WeightShare(bits=9)
    with pytest.raises(ConfigError):
        Config.from_dict({"_type": "WeightShare", "init": "kmeans++"})


def test_bits_per_layer(digits):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    compress(m, [WeightShare(bits=5, overrides=(LayerBits("3", 2),))], Context(digits, threads=1))
    assert m[1].weight.unique().numel() == 32
    assert m[3].weight.unique().numel() == 4


def test_shared_weight_forward_exact_zero():
    p = SharedWeight(torch.tensor([-1.5, 0.5]), torch.tensor([0, 1, 0]),
                     torch.tensor([True, True, False]))
    out = p(torch.empty(3))
    assert out.tolist() == [-1.5, 0.5, 0.0] and not torch.signbit(out[2])

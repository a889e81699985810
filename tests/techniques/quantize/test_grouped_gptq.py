"""GPTQ on a MobileNet-style model: depthwise (grouped) convolutions get per-group Hessians."""

import copy

import pytest
import torch
from torch import nn

from netpress.techniques.quantize.weight_only import WeightOnly, quantize_weights


def mobilenet_block() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),  # depthwise
        nn.Conv2d(16, 32, 1), nn.ReLU(),                          # pointwise
        nn.Conv2d(32, 32, 3, padding=1, groups=4), nn.ReLU(),     # grouped
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def test_gptq_quantizes_depthwise_and_grouped_convs_better_than_rtn():
    torch.manual_seed(0)
    model = mobilenet_block().eval()
    x = torch.randn(64, 3, 12, 12)
    calib = [x[i:i + 16] for i in range(0, 64, 16)]
    with torch.no_grad():
        ref = model(x)
    errs = {}
    for method in ("rtn", "gptq"):
        q = quantize_weights(copy.deepcopy(model), WeightOnly(bits=3, group_size=0, method=method),
                             calib)
        for i in (2, 6):  # the grouped layers are on a 3-bit grid, per output channel
            w = q[i].weight.detach().reshape(q[i].out_channels, -1)
            assert all(torch.unique(row).numel() <= 8 for row in w)
        with torch.no_grad():
            errs[method] = float((q(x) - ref).pow(2).mean())
    assert errs["gptq"] < errs["rtn"]


def test_act_order_keeps_contiguous_groups_and_beats_rtn():
    from netpress.techniques.quantize.gptq import gptq, hessian, rtn

    g = torch.Generator().manual_seed(0)
    scale = torch.linspace(0.1, 3.0, 96)[torch.randperm(96, generator=g)]  # uneven input energy
    x = torch.randn(1024, 96, generator=g) * scale
    w = torch.randn(24, 96, generator=g)
    h = hessian(x)
    q_act, s_act, _ = gptq(w, h, 3, group_size=32, act_order=True)
    q_seq, _, _ = gptq(w, h, 3, group_size=32)
    q_rtn, _, _ = rtn(w, 3, group_size=32)
    assert s_act.shape == (24, 3)
    for grp in range(3):  # each original, contiguous group is on its own 3-bit grid
        cols = q_act[:, grp * 32:(grp + 1) * 32]
        assert all(torch.unique(r).numel() <= 8 for r in cols)
    err = {k: float(((q - w) @ x.T).norm()) for k, q in
           (("act", q_act), ("seq", q_seq), ("rtn", q_rtn))}
    assert err["act"] < err["seq"] < err["rtn"]


def test_clip_search_lowers_rounding_error_of_heavy_tailed_groups():
    from netpress.techniques.quantize.gptq import CLIP_NORM, rtn

    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 256, generator=g)
    w[torch.rand(32, 256, generator=g) < 0.01] *= 8  # a few outliers per group
    q_plain, s_plain, _ = rtn(w, 4, group_size=128)
    q_clip, s_clip, _ = rtn(w, 4, group_size=128, clip=True)
    err = {k: (w - q).abs().pow(CLIP_NORM).reshape(32, 2, 128).sum(2) for k, q in
           (("plain", q_plain), ("clip", q_clip))}
    assert bool((err["clip"] <= err["plain"] + 1e-6).all())  # never worse, group by group
    assert float(err["clip"].sum()) < 0.95 * float(err["plain"].sum())
    assert bool((s_clip <= s_plain + 1e-6).all()) and bool((s_clip < s_plain).any())
    for row in q_clip[:, :128]:
        assert torch.unique(row).numel() <= 16


@pytest.mark.parametrize("act_order", [False, True])
def test_clipped_gptq_packs_and_reloads_exactly(tmp_path, act_order):
    from netpress.techniques.quantize.storage import load_packed, save_packed

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    x = torch.randn(128, 256)
    cfg = WeightOnly(bits=4, group_size=64, act_order=act_order, clip=True)
    q = quantize_weights(copy.deepcopy(model), cfg, [x[:64], x[64:]])
    path = save_packed(q, tmp_path / "q.safetensors")
    fresh = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    with torch.no_grad():
        assert torch.equal(load_packed(fresh, path)(x), q(x))

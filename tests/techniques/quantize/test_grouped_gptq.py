"""GPTQ on a MobileNet-style model: depthwise (grouped) convolutions get per-group Hessians."""

import copy

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

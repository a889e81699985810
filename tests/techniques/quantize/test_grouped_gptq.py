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

import torch
from torch import nn

from netpress.techniques.quantize.bnfold import fold_batchnorm
from netpress.zoo import build_model


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def test_folding_equals_unfolded_output_on_resnet():
    torch.manual_seed(0)
    model = build_model("resnet-small").eval()
    _randomise_bn(model)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        ref = model(x)
        folded = fold_batchnorm(model)
        out = model(x)
    assert len(folded) == 10
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert torch.allclose(ref, out, atol=1e-4, rtol=1e-4)


def test_linear_bn1d_and_no_bias_conv():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU()).eval()
    c = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3)).eval()
    _randomise_bn(m)
    _randomise_bn(c)
    x, xi = torch.randn(5, 6), torch.randn(2, 2, 6, 6)
    with torch.no_grad():
        r1, r2 = m(x), c(xi)
        fold_batchnorm(m)
        fold_batchnorm(c)
        assert torch.allclose(r1, m(x), atol=1e-5) and torch.allclose(r2, c(xi), atol=1e-5)

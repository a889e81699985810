import torch
from torch import nn
from torch.nn.utils import parametrize

from netpress.profile import count_macs, count_nonzero, count_params, layer_counts
from netpress.zoo import build_model

X1 = torch.zeros(1, 1, 28, 28)


def test_lenet_300_100_exact():
    m = build_model("lenet-300-100")
    assert count_params(m) == 266_610
    assert sum(count_macs(m, X1).values()) == 266_200


def test_lenet5_caffe_exact():
    m = build_model("lenet5-caffe")
    assert count_params(m) == 431_080
    macs = count_macs(m, X1)
    assert macs == {"conv1": 288_000, "conv2": 1_600_000, "fc1": 400_000, "fc2": 5_000}
    assert sum(macs.values()) == 2_293_000


def test_grouped_conv_macs():
    m = nn.Conv2d(8, 16, 3, groups=4, padding=1)
    assert count_macs(m, torch.zeros(1, 8, 5, 5)) == {"model": 16 * 25 * 2 * 9}


class Mask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w):
        return w * self.mask


def test_nonzeros_see_through_parametrizations():
    lin = nn.Linear(10, 10, bias=False)
    mask = (torch.arange(100) % 4 == 0).float().view(10, 10)
    parametrize.register_parametrization(lin, "weight", Mask(mask))
    assert count_nonzero(lin) == 25
    rows = layer_counts(nn.Sequential(lin), torch.zeros(1, 10))
    assert rows[0].nonzero == 25 and rows[0].params == 100 and rows[0].macs == 100


def test_layer_rows_cover_every_weight():
    m = build_model("resnet-small")
    rows = layer_counts(m, X1)
    assert sum(r.params for r in rows) == count_params(m)
    assert {r.type for r in rows} >= {"Conv2d", "BatchNorm2d", "Linear"}
    assert all(r.bytes == r.params * 4 for r in rows)

import pytest
import torch

from netpress.bake import bake
from netpress.config import apply
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.targets import Targets
from netpress.techniques.prune import NMSparsity, check_nm
from netpress.zoo import build_model


@pytest.mark.parametrize("n, m, layers", [(2, 4, ("1", "3", "5")), (4, 8, ("1",))])
def test_nm_holds_through_finetuning_and_bake(digits, n, m, layers):
    torch.manual_seed(0)
    net = build_model("lenet-300-100")
    targets = Targets(names=layers)  # 300 and 100 inputs do not split into groups of 8
    assert all(v > 0 for v in check_nm(net, n, m, targets).values())
    apply(net, NMSparsity(n, m, finetune_epochs=1, lr=1e-3, targets=targets), Context(digits))
    bake(net)
    assert check_nm(net, n, m, targets) == {k: 0 for k in layers}
    for i in map(int, layers):
        w = net[i].weight
        assert int((w != 0).sum()) == w.numel() * n // m


def test_nm_on_conv_and_clear_error_for_odd_inputs(digits):
    net = build_model("lenet5-caffe")
    with pytest.raises(ConfigError, match="conv1 \\(input dim 1\\)"):
        apply(net, NMSparsity(2, 4), Context(digits))
    apply(net, NMSparsity(2, 4, targets=Targets(ignore=("conv1",))), Context(digits))
    assert check_nm(net, 2, 4, Targets(ignore=("conv1",))) == {"conv2": 0, "fc1": 0, "fc2": 0}

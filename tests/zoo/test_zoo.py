import pytest
import torch

from netpress.errors import ModelError
from netpress.profile import count_params
from netpress.zoo import ZOO, build_model


@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_model_runs_on_28x28(name):
    assert build_model(name)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_parameter_counts():
    assert count_params(build_model("lenet5")) == 61_706
    assert count_params(build_model("lenet5-caffe")) == 431_080


def test_resnet_small_has_a_real_graph():
    m = build_model("resnet-small")
    kinds = {type(x).__name__ for x in m.modules()}
    assert {"BatchNorm2d", "BasicBlock"} <= kinds


def test_user_factory_and_errors():
    assert type(build_model("netpress.zoo.lenet:LeNet5")).__name__ == "LeNet5"
    with pytest.raises(ModelError, match="unknown model"):
        build_model("alexnet")
    with pytest.raises(ModelError, match="cannot load model factory"):
        build_model("no.such:thing")
    with pytest.raises(ModelError, match="not a torch.nn.Module"):
        build_model("netpress.data.digits:load_digits_split")

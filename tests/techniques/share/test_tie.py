import sys
import types

import pytest
import torch
from torch import nn

from netpress import api
from netpress.config import Config
from netpress.context import Context
from netpress.errors import ConfigError, ModelError
from netpress.io import load_weights
from netpress.profile import count_params
from netpress.targets import Targets
from netpress.techniques.edits import load_edited, save_edited
from netpress.techniques.share import Share, similar_groups, tie


def stack() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 32),
                         nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))


def test_tie_uses_one_tensor_initialised_to_the_mean():
    m = stack()
    mean = (m[3].weight + m[5].weight).detach() / 2
    tie(m, [["3", "5"]])
    assert m[3].weight is m[5].weight and m[3].bias is m[5].bias
    assert torch.allclose(m[3].weight, mean)
    assert count_params(m) == count_params(stack()) - 32 * 32 - 32


def test_tied_layers_are_stored_once_and_reload_tied(tmp_path, digits, monkeypatch):
    fake = types.ModuleType("netpress_test_models")
    fake.stack = stack
    monkeypatch.setitem(sys.modules, "netpress_test_models", fake)
    m = tie(stack(), [["3", "5"]])
    path = save_edited(m, tmp_path / "t.safetensors", "netpress_test_models:stack")
    stored = load_weights(path)
    assert "3.weight" in stored and "5.weight" not in stored and "5.bias" not in stored
    dense = save_edited(stack(), tmp_path / "d.safetensors", "netpress_test_models:stack")
    assert dense.stat().st_size - path.stat().st_size >= (32 * 32 + 32) * 4
    again = load_edited(path)
    assert again[3].weight is again[5].weight
    x = digits.test[0][:5]
    with torch.no_grad():
        assert torch.equal(again(x), m(x))


def test_similarity_groups_and_user_groups():
    m = stack()
    with torch.no_grad():
        m[5].weight.copy_(m[3].weight + 1e-3 * torch.randn(32, 32))
        m[5].bias.copy_(m[3].bias)
    assert similar_groups(m, Targets(types=("Linear",)), 0.99) == [["3", "5"]]
    assert similar_groups(m, Targets(types=("Linear",), ignore=("5",)), 0.99) == []
    with pytest.raises(ModelError, match="differ in structure"):
        tie(stack(), [["1", "3"]])
    with pytest.raises(ConfigError, match="at least two"):
        Share(groups=("3",))


def test_handler_ties_and_finetunes(digits):
    cfg = Share(groups=("3,5",), finetune_epochs=3, lr=1e-2)
    assert Config.from_dict(cfg.to_dict()) == cfg
    ctx = Context(digits)
    m = api.compress(stack(), [cfg], ctx)
    assert m[3].weight is m[5].weight
    assert ctx.evaluate(m) > ctx.evaluate(tie(stack(), [["3", "5"]])) + 0.3

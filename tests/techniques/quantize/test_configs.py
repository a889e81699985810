import pytest
import torch
from torch import nn

from netpress import api
from netpress.config import Config
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.targets import Targets
from netpress.techniques.quantize.modules import baked_copy
from netpress.techniques.quantize.ptq import DynamicInt8, StaticInt8
from netpress.techniques.quantize.qat import Qat
from netpress.techniques.quantize.run import parse_scheme
from netpress.techniques.quantize.weight_only import WeightOnly


@pytest.mark.parametrize("cfg", [
    StaticInt8(method="kl", targets=Targets(ignore=("fc2",))), DynamicInt8(),
    WeightOnly(bits=3, group_size=64, method="rtn"), Qat(epochs=2, method="ste"),
])
def test_configs_round_trip(cfg):
    assert Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("bad", [
    {"_type": "StaticInt8", "method": "median"},
    {"_type": "StaticInt8", "percentile": 0.2},
    {"_type": "WeightOnly", "bits": 9},
    {"_type": "Qat", "method": "pact"},
])
def test_bad_values_name_the_key(bad):
    with pytest.raises(ConfigError):
        Config.from_dict(bad)


def test_compress_with_stages_and_bake_is_idempotent(digits):
    torch.manual_seed(0)
    model = api.load_model("lenet-300-100")
    ctx = Context(digits)
    q = api.compress(model, [WeightOnly(bits=4, group_size=64, method="gptq")], ctx)
    x = digits.test[0][:32]
    once = baked_copy(q)
    twice = api.bake(baked_copy(q))
    with torch.no_grad():
        ref = q(x)
        assert torch.equal(once(x), ref) and torch.equal(twice(x), ref)
    api.bake(q)  # the original is still intact and bakes in place
    with torch.no_grad():
        assert torch.equal(q(x), ref)
    assert not any(isinstance(m, nn.Module) and hasattr(m, "parametrizations")
                   for m in once.modules())


def test_parse_scheme():
    assert parse_scheme("w3") == ("weight", 3, "gptq")
    assert parse_scheme("int8") == ("int8", 8, "both")
    with pytest.raises(ConfigError, match="unknown scheme"):
        parse_scheme("w9-gptq")

import dataclasses
from typing import Literal

import pytest
import torch
from torch import nn

from netpress.config import CONFIGS, Config, apply, register
from netpress.errors import ConfigError
from netpress.targets import Targets


@dataclasses.dataclass(frozen=True)
class Scale(Config):
    factor: float  # multiply every weight by this
    mode: Literal["all", "first"] = "all"
    targets: Targets = Targets(types=("Linear",))

    def validate(self):
        if self.factor <= 0:
            raise ConfigError(f"factor must be > 0, got {self.factor}")


@register(Scale)
def apply_scale(model, cfg, ctx):
    with torch.no_grad():
        for _, m in cfg.targets.select(model):
            m.weight.mul_(cfg.factor)
    return model


def test_round_trip_every_registered_config():
    Scale(2.0)  # make sure it is registered
    for cls in CONFIGS.values():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if any(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in fields.values()):
            continue
        try:
            cfg = cls()
        except ConfigError:  # defaults that do nothing are refused (TransformerPrune)
            continue
        assert Config.from_dict(cfg.to_dict()) == cfg
    cfg = Scale(0.5, "first", Targets(names=("re:0|1",), ignore=("2",)))
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_apply_dispatches():
    m = nn.Sequential(nn.Linear(2, 2))
    w = m[0].weight.detach().clone()
    apply(m, Scale(3.0), None)
    assert torch.allclose(m[0].weight, 3 * w)


@pytest.mark.parametrize("data, msg", [
    ({"_type": "Nope"}, "unknown technique 'Nope'"),
    ({"factor": 1.0}, "needs a '_type'"),
    ({"_type": "Scale"}, "missing required key 'factor'"),
    ({"_type": "Scale", "factor": 1.0, "fator": 2}, "unknown key 'fator'"),
    ({"_type": "Scale", "factor": "big"}, "expected a number"),
    ({"_type": "Scale", "factor": -1.0}, "factor must be > 0"),
    ({"_type": "Scale", "factor": 1.0, "mode": "some"}, "not one of"),
    ({"_type": "Scale", "factor": 1.0, "_version": 9}, "version 9"),
    ({"_type": "Scale", "factor": 1.0, "targets": {"typs": []}}, "unknown key 'typs'"),
])
def test_bad_configs(data, msg):
    with pytest.raises(ConfigError, match=msg):
        Config.from_dict(data)


def test_targets_select():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Conv2d(1, 1, 1), nn.Linear(2, 2))
    assert [n for n, _ in Targets().select(m)] == ["0", "2", "3"]
    assert [n for n, _ in Targets(names=("re:[03]",)).select(m)] == ["0", "3"]
    assert [n for n, _ in Targets(ignore=("re:.*",)).select(m)] == []

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from netpress.bake import bake


class Half(nn.Module):
    def forward(self, w):
        return w * 0.5


def test_bake_of_a_deep_copy_leaves_the_original_working():
    lin = nn.Linear(3, 3)
    parametrize.register_parametrization(lin, "weight", Half())
    x = torch.randn(2, 3)
    before = lin(x)
    baked = bake(copy.deepcopy(lin))
    assert type(baked) is nn.Linear and not parametrize.is_parametrized(baked)
    assert torch.equal(baked(x), before)
    assert parametrize.is_parametrized(lin) and torch.equal(lin(x), before)
    assert bake(baked) is baked  # idempotent

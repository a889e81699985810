import torch
from torch import nn

from netpress.targets import Targets
from netpress.techniques.prune.masking import mask_of, set_mask


def test_targets_still_select_parametrized_modules():
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    set_mask(m[0], torch.ones(4, 4, dtype=torch.bool))
    assert type(m[0]).__name__ == "ParametrizedLinear"
    assert [n for n, _ in Targets(types=("Linear",)).select(m)] == ["0", "2"]


def test_set_mask_ands_with_the_old_mask():
    lin = nn.Linear(2, 1)
    set_mask(lin, torch.tensor([[True, False]]))
    set_mask(lin, torch.tensor([[False, True]]))
    assert mask_of(lin).mask.tolist() == [[0.0, 0.0]]
    assert int(torch.count_nonzero(lin.weight)) == 0
    assert len(lin.parametrizations["weight"]) == 1  # one mask, updated in place


def test_mask_is_saved_in_state_dict():
    lin = nn.Linear(3, 2)
    set_mask(lin, torch.tensor([[True, False, True], [False, False, True]]))
    assert "parametrizations.weight.0.mask" in lin.state_dict()

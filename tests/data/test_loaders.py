import pytest
import torch

from netpress.data import ArrayLoader, load_split
from netpress.errors import DataError


def test_shuffle_is_seeded_and_changes_per_epoch():
    x, y = torch.arange(20).float().view(20, 1, 1, 1), torch.arange(20)
    a = ArrayLoader(x, y, batch_size=5, shuffle=True, seed=1)
    b = ArrayLoader(x, y, batch_size=5, shuffle=True, seed=1)
    e1 = torch.cat([yy for _, yy in a])
    assert torch.equal(e1, torch.cat([yy for _, yy in b]))
    e2 = torch.cat([yy for _, yy in a])
    assert not torch.equal(e1, e2)
    assert sorted(e1.tolist()) == list(range(20))


def test_digits_split(digits):
    assert digits.input_shape == (1, 28, 28)
    assert len(digits.train[0]) + len(digits.val[0]) + len(digits.test[0]) == 1797
    assert len(digits.calib[0]) == 256


def test_user_data_function():
    s = load_split("netpress.data.digits:load_digits_split")
    assert s.name == "digits"


@pytest.mark.parametrize("spec, msg", [("mnist", "unknown data set"),
                                        ("nosuch.module:f", "cannot load data"),
                                        ("netpress.zoo:build_model", "seed=")])
def test_bad_specs(spec, msg):
    with pytest.raises(DataError, match=msg):
        load_split(spec)

import hashlib

import torch

from netpress import api
from netpress.io import load_weights


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_training_is_reproducible_to_the_byte(digits, tmp_path):
    a, b, c = (tmp_path / f"{n}.safetensors" for n in "abc")
    api.train("lenet5", digits, epochs=2, seed=7, out=a)
    api.train("lenet5", digits, epochs=2, seed=7, out=b)
    api.train("lenet5", digits, epochs=2, seed=8, out=c)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_training_learns(digits, tmp_path):
    model, result = api.train("lenet-300-100", digits, epochs=3, seed=0)
    assert result.losses[0] > result.losses[-1]
    assert api.evaluate(model, digits).accuracy > 0.85


def test_saved_weights_reload_to_equal_outputs(digits, tmp_path):
    model, _ = api.train("lenet5", digits, epochs=1, seed=0, out=tmp_path / "w.safetensors")
    again = api.load_model("lenet5", tmp_path / "w.safetensors")
    x = digits.test[0][:16]
    assert torch.equal(model(x), again(x))
    assert set(load_weights(tmp_path / "w.safetensors")) == set(model.state_dict())

import pytest
import torch
from torch import nn

from netpress.io import save_weights
from netpress.techniques.quantize.gptq import gptq, hessian, rtn
from netpress.techniques.quantize.pack import pack_codes, packed_nbytes, unpack_codes
from netpress.techniques.quantize.storage import load_packed, save_packed, weight_bits
from netpress.techniques.quantize.weight_only import WeightOnly, quantize_weights
from netpress.zoo import build_model

G = torch.Generator().manual_seed(0)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 7, 8])
def test_pack_roundtrip(bits):
    codes = torch.randint(0, 2**bits, (1001,), generator=G)
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_nbytes(1001, bits)
    assert torch.equal(unpack_codes(packed, bits, 1001), codes)


def test_pack_rejects_out_of_range():
    with pytest.raises(ValueError):
        pack_codes(torch.tensor([16]), 4)


@pytest.mark.parametrize("bits, group", [(4, 32), (3, 64), (2, 0), (8, 128)])
def test_gptq_beats_rtn_on_random_layer(bits, group):
    # correlated inputs, as real activations are: that is where GPTQ's compensation pays
    mix = torch.randn(128, 128, generator=G)
    x = torch.randn(2048, 128, generator=G) @ mix
    w = torch.randn(64, 128, generator=G)
    qg, _, _ = gptq(w, hessian(x), bits, group_size=group)
    qr, _, _ = rtn(w, bits, group_size=group)
    err_g = ((qg - w) @ x.T).norm() / (w @ x.T).norm()
    err_r = ((qr - w) @ x.T).norm() / (w @ x.T).norm()
    assert err_g < 0.9 * err_r


def test_packed_file_is_smaller_and_rebuilds_same_outputs(tmp_path, digits):
    torch.manual_seed(0)
    model = build_model("lenet5-caffe").eval()
    x = digits.test[0][:64]
    batches = [digits.calib[0][:128]]
    quantize_weights(model, WeightOnly(bits=4, group_size=128, method="gptq"), batches)
    with torch.no_grad():
        ref = model(x)
    path = save_packed(model, tmp_path / "w4.safetensors")
    fp = save_weights(build_model("lenet5-caffe"), tmp_path / "fp.safetensors")
    ratio = fp.stat().st_size / path.stat().st_size
    assert ratio > 6.5  # 32 bits → ≈4.2 bits on the weights, biases stay float
    assert 4.0 < weight_bits(model) < 4.3
    loaded = load_packed(build_model("lenet5-caffe").eval(), path)
    with torch.no_grad():
        assert torch.equal(loaded(x), ref)


@pytest.mark.parametrize("bits", [2, 3])
def test_conv_and_symmetric_roundtrip(tmp_path, bits):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 5)).eval()
    x = torch.randn(4, 3, 8, 8)
    quantize_weights(model, WeightOnly(bits=bits, group_size=0, method="gptq", symmetric=True),
                     [x])
    levels = torch.unique(model[0].weight[0]).numel()
    assert levels <= 2**bits
    path = save_packed(model, tmp_path / "q.safetensors")
    fresh = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 5)).eval()
    with torch.no_grad():
        assert torch.equal(load_packed(fresh, path)(x), model(x))


def test_bad_configs():
    from netpress.errors import ConfigError
    for kw in ({"bits": 1}, {"method": "awq"}, {"group_size": -1}):
        with pytest.raises(ConfigError):
            WeightOnly(**kw)
    with pytest.raises(ConfigError, match="calibration"):
        quantize_weights(nn.Sequential(nn.Linear(4, 4)), WeightOnly())

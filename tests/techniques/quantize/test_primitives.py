import pytest
import torch

from netpress.techniques.quantize.primitives import (
    binarize,
    dequantize,
    expand_to,
    fake_quant,
    fake_quant_weight,
    qrange,
    quantize,
    scale_zero_point,
    sqnr_db,
    ternarize,
    weight_min_max,
)

G = torch.Generator().manual_seed(0)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("gran", ["tensor", "channel", "group"])
def test_error_bound_half_step(bits, symmetric, gran):
    w = torch.randn(16, 96, generator=G)
    q = fake_quant_weight(w, bits, symmetric, gran, group_size=32)
    lo, hi = weight_min_max(w, gran, 32)
    scale, _ = scale_zero_point(lo, hi, bits, symmetric)
    step = expand_to(scale, w, 32)
    # round-to-nearest inside the range: error at most half a step everywhere
    assert bool(((q - w).abs() <= step / 2 + 1e-6).all())
    levels = torch.unique(q[0, :32]).numel()
    assert levels <= 2**bits


def test_finer_granularity_is_more_accurate():
    w = torch.randn(32, 256, generator=G) * torch.logspace(-2, 0, 32).unsqueeze(1)
    errs = [sqnr_db(w, fake_quant_weight(w, 4, True, g, 32)) for g in ("tensor", "channel", "group")]
    assert errs[0] < errs[1] < errs[2]


def test_quantize_dequantize_roundtrip_codes():
    s, z = scale_zero_point(torch.tensor(-1.0), torch.tensor(3.0), 8, False)
    x = torch.linspace(-1, 3, 50)
    q = quantize(x, s, z, 8, False)
    assert int(q.min()) >= 0 and int(q.max()) <= 255
    assert float((dequantize(q, s, z) - x).abs().max()) <= float(s) / 2 + 1e-6
    assert float(dequantize(quantize(torch.zeros(1), s, z, 8, False), s, z)) == 0.0  # 0 exact


def test_ste_gradient_passes_inside_and_stops_outside():
    x = torch.tensor([0.3, 100.0], requires_grad=True)
    fake_quant(x, torch.tensor(0.1), torch.tensor(0.0), 8, True).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0]


def test_qrange_and_bad_bits():
    assert qrange(2, True) == (-2, 1) and qrange(3, False) == (0, 7)
    with pytest.raises(ValueError):
        qrange(1, True)


def test_binary_and_ternary_codes():
    w = torch.randn(8, 64, generator=G, requires_grad=True)
    b = binarize(w)
    assert all(torch.unique(b[i].abs()).numel() == 1 for i in range(8))
    t = ternarize(w)
    assert all(torch.unique(t[i]).numel() <= 3 for i in range(8))
    assert 0.2 < float((t == 0).float().mean()) < 0.7
    (b.sum() + t.sum()).backward()
    assert w.grad is not None and bool((w.grad == 2).all())
    # ternary keeps more signal than binary on Gaussian weights
    assert sqnr_db(w.detach(), t.detach()) > sqnr_db(w.detach(), b.detach())


def test_sqnr_8bit_gaussian():
    w = torch.randn(64, 512, generator=G)
    assert 35 < sqnr_db(w, fake_quant_weight(w, 8)) < 50

import pytest
import torch

from netpress.techniques.quantize.observers import Observer

G = torch.Generator().manual_seed(0)


def _observe(data: torch.Tensor, batches: int = 8) -> Observer:
    ob = Observer()
    for chunk in data.chunk(batches):
        ob.update(chunk)
    return ob


def test_minmax_uniform():
    ob = _observe(torch.rand(100_000, generator=G) * 2 - 1)
    lo, hi = ob.range("minmax", 8, False)
    assert -1.0 <= lo < -0.999 and 0.999 < hi <= 1.0


def test_ema_is_between_batch_extremes():
    ob = Observer()
    ob.update(torch.tensor([0.0, 1.0]))
    ob.update(torch.tensor([0.0, 3.0]))
    lo, hi = ob.range("ema", 8, False)
    assert lo == 0.0 and hi == pytest.approx(0.9 * 1.0 + 0.1 * 3.0)


def test_percentile_gaussian():
    x = torch.randn(400_000, generator=G)
    lo, hi = _observe(x).range("percentile", 8, False, percentile=0.999)
    assert hi == pytest.approx(3.09, abs=0.05) and lo == pytest.approx(-3.09, abs=0.05)


def test_histogram_survives_growing_range():
    ob = Observer()
    ob.update(torch.rand(50_000, generator=G))
    ob.update(torch.rand(50_000, generator=G) * 10)
    assert float(ob.hist.sum()) == 100_000
    lo, hi = ob.range("percentile", 8, False, percentile=0.5)
    assert 0.9 < hi < 1.6  # the median of the mixture is about 1


@pytest.mark.parametrize("method", ["mse", "kl"])
def test_clipping_methods_clip_heavy_tails(method):
    torch.manual_seed(0)
    x = torch.distributions.Laplace(0.0, 1.0).sample((300_000,))
    ob = _observe(x)
    lo, hi = ob.range(method, 8 if method == "kl" else 4, True)
    mx = float(x.abs().max())
    assert 1.0 < hi < 0.9 * mx and lo < -1.0


def test_mse_beats_minmax_error_at_4_bits():
    from netpress.techniques.quantize.primitives import fake_quant, scale_zero_point
    x = torch.distributions.Laplace(0.0, 1.0).sample((200_000,))
    ob = _observe(x)
    errs = {}
    for m in ("minmax", "mse"):
        lo, hi = ob.range(m, 4, True)
        s, z = scale_zero_point(torch.tensor(lo), torch.tensor(hi), 4, True)
        errs[m] = float((fake_quant(x, s, z, 4, True) - x).pow(2).mean())
    assert errs["mse"] < 0.5 * errs["minmax"]


def test_empty_observer_refuses():
    with pytest.raises(RuntimeError):
        Observer().range("minmax", 8, False)


def test_kl_on_non_negative_data_uses_all_levels_of_an_unsigned_grid():
    # after ReLU an asymmetric uint8 grid spends 256 levels on [0, t], a signed one 128 per
    # side: the search starts at that many histogram bins, and a histogram whose mass all
    # lies in the first 100 of 2048 bins is reproduced exactly from there on (KL 0)
    from netpress.techniques.quantize.observers import kl_threshold

    h = torch.zeros(2048, dtype=torch.float64)
    h[:100] = torch.arange(100, 0, -1, dtype=torch.float64)
    assert kl_threshold(h, 2048.0, 8, signed=True) == 128.0
    assert kl_threshold(h, 2048.0, 8, signed=False) == 256.0
    torch.manual_seed(0)
    x = torch.distributions.Exponential(1.0).sample((300_000,))
    lo, hi = _observe(x).range("kl", 8, False)
    assert lo == pytest.approx(float(x.min())) and 1.0 < hi < float(x.max())


def test_kl_ignores_exact_zeros_after_relu():
    # 60 % exact zeros (a ReLU) plus an exponential: the zeros quantize exactly, so the
    # range must not shrink to suit their spike (it clipped ~10 % of values before)
    torch.manual_seed(0)
    x = torch.distributions.Exponential(1.0).sample((200_000,))
    x = torch.where(torch.rand(200_000) < 0.6, torch.zeros(()), x)
    lo, hi = _observe(x).range("kl", 8, False)
    assert lo == 0.0 and float((x > hi).float().mean()) < 0.001


def test_kl_range_searches_both_edges_of_a_skewed_signed_tensor():
    from netpress.techniques.quantize.observers import kl_range

    torch.manual_seed(0)
    x = torch.cat([torch.randn(200_000) - 3, torch.tensor([-40.0, 60.0])])  # two outliers
    h = torch.histc(x.double(), 2048, float(x.min()), float(x.max()))
    a, b = kl_range(h, float(x.min()), float(x.max()))
    assert -40.0 < a < -6.0 and 0.0 <= b < 20.0  # both outliers clipped, zero kept inside
    assert float(((x < a) | (x > b)).float().mean()) < 0.001


def test_exact_zeros_are_counted_apart_through_rebinning():
    # the range widens batch by batch, so the histogram is rebinned; the zeros must
    # neither drift into a neighbouring bin nor be lost for percentile/mse
    from netpress.techniques.quantize.observers import Observer

    torch.manual_seed(1)
    ob = Observer()
    total = 0
    for k in range(1, 4):
        x = torch.empty(4000).uniform_(-k, 2 * k)
        x[:1000] = 0.0
        ob.update(x)
        total += 1000
    assert float(ob.zeros) == total and float(ob.hist.sum()) == 3 * 3000
    full = ob.full_hist()
    lo, hi = float(ob.min_val), float(ob.max_val)
    zero_bin = int((0 - lo) / (hi - lo) * full.numel())
    assert float(full[zero_bin]) >= total and float(full.sum()) == 12_000


def test_observer_state_from_before_the_zero_count_loads():
    from netpress.techniques.quantize.observers import Observer

    ob = Observer()
    ob.update(torch.randn(100))
    state = {k: v for k, v in ob.state_dict().items() if k != "zeros"}
    fresh = Observer()
    fresh.load_state_dict(state)  # strict: the missing count defaults to 0
    assert float(fresh.zeros) == 0.0 and torch.equal(fresh.hist, ob.hist)

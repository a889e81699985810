import math

import pytest
import torch

from netpress.tasks.losses import kd_loss, soft_kl
from netpress.techniques.distill.losses import (
    attention_loss,
    attention_map,
    embedding_loss,
    hint_loss,
)


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def test_kd_loss_equals_hand_computed_value():
    s, t, y, temp, alpha = [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], 0, 2.0, 0.7
    pt = _softmax([v / temp for v in t])
    ps = _softmax([v / temp for v in s])
    kl = sum(a * (math.log(a) - math.log(b)) for a, b in zip(pt, ps, strict=True))
    ce = -math.log(_softmax(s)[y])
    expected = alpha * temp**2 * kl + (1 - alpha) * ce
    got = kd_loss(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), temp, alpha)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # by hand: p_t/p_s = e at class 0 and 1/e at class 2, so KL = p_t[0] − p_t[2] = 0.32022;
    # CE = 2 + ln(1 + 1/e + 1/e²) = 2.40761; 0.7·4·0.32022 + 0.3·2.40761 = 1.61872
    assert float(got) == pytest.approx(1.61872, abs=1e-5)


def test_kd_loss_batch_mean_and_soft_only():
    s = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    # second row identical → its KL is 0; the batch mean halves the first row's KL
    p = _softmax([1.0, 0.0])
    q = _softmax([0.0, 1.0])
    kl_row = sum(a * (math.log(a) - math.log(b)) for a, b in zip(p, q, strict=True))
    assert float(kd_loss(s, t, None, temperature=1.0)) == pytest.approx(kl_row / 2, rel=1e-6)


def test_t_squared_scaling():
    s, t = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[1.5, 0.0, -0.5]])
    for temp in (1.0, 3.0, 10.0):
        assert float(kd_loss(s, t, None, temp)) == pytest.approx(
            float(soft_kl(s, t, temp)) * temp**2, rel=1e-6)

    def grad_norm(temp):
        x = s.clone().requires_grad_(True)
        kd_loss(x, t, None, temp).backward()
        return float(x.grad.norm())

    # with T², the soft gradient tends to (z_s − z_t)/C and no longer shrinks like 1/T
    g10, g20 = grad_norm(10.0), grad_norm(20.0)
    assert g20 / g10 == pytest.approx(1.0, abs=0.02)
    expected = float(((s - s.mean()) - (t - t.mean())).norm()) / 3
    assert g20 == pytest.approx(expected, rel=0.02)


def test_hint_and_attention_and_embedding():
    assert float(hint_loss(torch.full((2, 3), 2.0), torch.zeros(2, 3))) == 4.0
    with pytest.raises(ValueError, match="adapter"):
        hint_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    f = torch.zeros(1, 2, 1, 2)
    f[0, :, 0, 0] = torch.tensor([1.0, 3.0])  # mean of squares 5 at pixel 0, 0 at pixel 1
    assert attention_map(f).tolist() == [[1.0, 0.0]]
    g = torch.zeros(1, 4, 1, 2)
    g[0, :, 0, 1] = 1.0
    assert float(attention_loss(f, g)) == pytest.approx(2.0)  # ‖(1,0) − (0,1)‖²
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[6.0, 8.0]])
    assert float(embedding_loss(a, b, "cosine")) == pytest.approx(0.0, abs=1e-7)
    assert float(embedding_loss(a, b, "mse")) == pytest.approx((9 + 16) / 2)

import pytest
import torch
from torch import nn

from netpress.techniques.lowrank.modules import CPConv, LowRankLinear, Tucker2Conv
from netpress.techniques.lowrank.rank import energy_for_budget, kept_energy, rank_for_energy
from netpress.techniques.lowrank.svd import svd_break_even, svd_factors, svd_params
from netpress.techniques.lowrank.tucker import cp_params, tucker2_factors, tucker2_params


def test_svd_full_rank_reproduces_outputs():
    torch.manual_seed(0)
    dense = nn.Linear(20, 12)
    lr = LowRankLinear.from_linear(dense, 12)
    x = torch.randn(5, 20)
    assert torch.allclose(lr(x), dense(x), atol=1e-5)
    assert sum(p.numel() for p in lr.parameters()) == svd_params(12, 20, 12) + 12


def test_truncated_svd_is_eckart_young_optimal():
    torch.manual_seed(1)
    w = torch.randn(10, 8, dtype=torch.float64)
    s = torch.linalg.svdvals(w)
    a, b = svd_factors(w, 3)
    err = torch.linalg.matrix_norm(w - b @ a)
    assert float(err) == pytest.approx(float(s[3:].pow(2).sum().sqrt()), rel=1e-9)


def test_energy_rank_is_the_smallest_reaching_the_energy():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])  # energies 16, 4, 1, 1 of 22
    assert kept_energy(s, 1) == pytest.approx(16 / 22)
    assert rank_for_energy(s, 16 / 22) == 1
    assert rank_for_energy(s, 16 / 22 + 1e-6) == 2
    assert rank_for_energy(s, 0.9) == 2  # 20/22 = 0.909
    assert rank_for_energy(s, 0.95) == 3  # 21/22 = 0.9545
    assert rank_for_energy(s, 1.0) == 4
    for e in (0.1, 0.5, 0.9, 0.99):
        r = rank_for_energy(s, e)
        assert kept_energy(s, r) >= e and (r == 1 or kept_energy(s, r - 1) < e)
    with pytest.raises(ValueError):
        rank_for_energy(s, 0.0)


def test_energy_for_budget_is_the_largest_fitting():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])
    costs = [lambda e: 10 * rank_for_energy(s, e)]
    e = energy_for_budget(costs, 25)  # rank ≤ 2 fits, rank 3 does not
    assert rank_for_energy(s, e) == 2 and rank_for_energy(s, min(1.0, e + 1e-4)) == 3
    assert energy_for_budget(costs, 5) == 0.0
    assert energy_for_budget(costs, 100) == 1.0
    assert svd_break_even(300, 784) == 216 and svd_params(300, 784, 216) < 300 * 784


def test_tucker_full_ranks_reproduce_a_conv():
    torch.manual_seed(2)
    conv = nn.Conv2d(6, 10, 3, stride=2, padding=1)
    t = Tucker2Conv.from_conv(conv, (10, 6))
    x = torch.randn(2, 6, 9, 9)
    assert torch.allclose(t(x), conv(x), atol=1e-5)
    assert sum(m.weight.numel() for m in t) == tucker2_params(10, 6, 3, 3, (10, 6))


def test_tucker_truncation_error_shrinks_with_rank():
    torch.manual_seed(3)
    w = torch.randn(12, 8, 3, 3)
    errs = []
    for r in ((3, 2), (6, 4), (12, 8)):
        f, c, last = tucker2_factors(w, r)
        rec = torch.einsum("oa,abhw,bi->oihw", last[:, :, 0, 0], c, f[:, :, 0, 0])
        errs.append(float((rec - w).norm() / w.norm()))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-5


def test_cp_conv_approximates_and_counts():
    torch.manual_seed(4)
    # a kernel of exact CP rank 2 is recovered by a rank-2 CP conv
    a, b, c, d = torch.randn(5, 2), torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2)
    w = torch.einsum("or,ir,hr,wr->oihw", a, b, c, d)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(w)
    cp = CPConv.from_conv(conv, 2)
    x = torch.randn(2, 3, 7, 7)
    with torch.no_grad():
        rel = float((cp(x) - conv(x)).norm() / conv(x).norm())
    assert rel < 1e-3
    assert sum(m.weight.numel() for m in cp) == cp_params(5, 3, 3, 3, 2)

"""L0 gates and group lasso: the gates' expected sparsity, exact removal, and training on
digits that really removes neurons or leaves the zeros it promised."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from netpress.config import apply
from netpress.context import Context
from netpress.techniques.prune.structured import channel_counts
from netpress.techniques.regularize import GroupLasso, L0Regularize
from netpress.techniques.regularize.gates import (
    deterministic_gate,
    expected_l0,
    init_log_alpha,
    sample_gate,
)
from netpress.techniques.regularize.group_lasso import prox_step, zero_rows
from netpress.techniques.regularize.removal import remove_channels


def test_expected_l0_is_the_share_of_open_sampled_gates():
    torch.manual_seed(0)
    la = torch.linspace(-4, 4, 9)
    samples = sample_gate(la.expand(40_000, 9))
    measured = (samples > 0).float().mean(0)
    assert torch.allclose(measured, expected_l0(la), atol=0.01)
    assert float(deterministic_gate(torch.tensor(init_log_alpha(0.95)))) == pytest.approx(0.95)
    assert deterministic_gate(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 1.0]


def test_removing_zero_channels_keeps_outputs():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    with torch.no_grad():
        m[0].weight[[1, 4]] = 0
        m[0].bias[[1, 4]] = 0
    x = torch.randn(5, 1, 6, 6)
    before = m(x)
    assert zero_rows(m[0]) == [1, 4]
    assert remove_channels(m, {m[0]: zero_rows(m[0])}, x[:1]) == 2
    assert m[0].out_channels == 4 and m[3].in_features == 4 * 16
    assert torch.allclose(m(x), before, atol=1e-6)


def test_prox_step_zeroes_small_groups():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0], [0.1, 0.0]]))
        lin.bias.zero_()
    prox_step(lin, 1.0)
    assert lin.weight.tolist()[1] == [0.0, 0.0]
    assert lin.weight[0].tolist() == pytest.approx([2.4, 3.2])


@pytest.fixture(scope="module")
def trained(digits):
    from netpress.train import fit

    ctx = Context(digits, threads=2)
    torch.manual_seed(0)
    x0, _ = ctx.example_inputs(1), None
    model = nn.Sequential(nn.Flatten(), nn.Linear(x0[0].numel(), 64), nn.ReLU(),
                          nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    fit(model, ctx.train_loader(), epochs=3, lr=3e-3, threads=2)
    return model, ctx


def _plain(model: nn.Module) -> bool:
    return not any("parametrizations" in n for n, _ in model.named_modules())


def test_l0_neurons_are_removed_for_real(trained):
    model, ctx = trained
    base = ctx.evaluate(model)
    out = apply(copy.deepcopy(model), L0Regularize(gates="neurons", lam=2.0, epochs=3,
                                                   gate_lr=0.3), ctx)
    counts = channel_counts(out)
    assert counts["1"] < 64 and counts["3"] < 32 and counts["5"] == 10  # output layer kept
    assert ctx.evaluate(out) > base - 0.05 and _plain(out)


def test_l0_weight_gates_leave_masked_zeros(trained):
    model, ctx = trained
    out = apply(copy.deepcopy(model), L0Regularize(gates="weights", lam=2.0, epochs=3,
                                                   gate_lr=0.3), ctx)
    lins = [m for m in out.modules() if isinstance(m, nn.Linear)]
    zeros = sum(int((m.weight == 0).sum()) for m in lins)
    assert 0.05 < zeros / sum(m.weight.numel() for m in lins) < 1.0
    assert channel_counts(out) == channel_counts(model)  # unstructured: shapes unchanged


def test_group_lasso_removes_channels(trained):
    model, ctx = trained
    out = apply(copy.deepcopy(model), GroupLasso(lam=300.0, epochs=2), ctx)
    counts = channel_counts(out)
    assert counts["1"] < 64 and counts["5"] == 10 and _plain(out)

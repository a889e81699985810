"""Early stopping in the shared loop and the recovery every command uses."""

import copy

import pytest
import torch
from torch import nn

from netpress.context import Context
from netpress.recovery import RECOVERY, Recovery, recover
from netpress.train import fit


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


def _scripted(scores):
    """A val_fn returning ``scores`` in turn and keeping the weights it saw each epoch."""
    seen = []

    def val_fn(model):
        seen.append(copy.deepcopy(model.state_dict()))
        return scores[len(seen) - 1]

    return val_fn, seen


def test_patience_stops_and_restores_the_best_epoch(digits):
    ctx = Context(digits)
    model = _mlp()
    val_fn, seen = _scripted([0.50, 0.70, 0.60, 0.65, 0.69, 0.99, 0.99])
    r = fit(model, ctx.train_loader(), epochs=7, lr=1e-3, val_fn=val_fn, patience=3)
    assert len(r.losses) == 5 and r.stopped == "patience"  # epochs 3, 4, 5 were no better
    assert r.best_epoch == 2 and r.best_score == 0.70
    for k, v in model.state_dict().items():
        assert torch.equal(v, seen[1][k])  # epoch 2's weights, not epoch 5's


def test_stop_at_and_min_epochs(digits):
    ctx = Context(digits)
    val_fn, _ = _scripted([0.95, 0.90, 0.96, 0.97])
    r = fit(_mlp(), ctx.train_loader(), epochs=4, val_fn=val_fn, patience=5, min_epochs=2,
            stop_at=0.955)
    # epoch 1 is before min_epochs: neither kept nor allowed to stop the run
    assert len(r.losses) == 3 and r.stopped == "reached" and r.best_epoch == 3


def test_without_patience_the_cap_is_the_length(digits):
    val_fn, _ = _scripted([0.9, 0.1, 0.1])
    r = fit(_mlp(), Context(digits).train_loader(), epochs=3, val_fn=val_fn)
    assert len(r.losses) == 3 and r.best_epoch is None and r.stopped == ""


def test_recover_keeps_zeros_and_improves_validation(digits):
    ctx = Context(digits)
    model = _mlp()
    with torch.no_grad():
        model[1].weight[:, :392] = 0.0
    before = ctx.evaluate(model)
    r = recover(model, ctx, Recovery(lr=3e-3, max_epochs=15, patience=2))
    assert 1 <= len(r.losses) <= 15 and r.best_epoch is not None
    assert ctx.evaluate(model) == pytest.approx(r.best_score) and r.best_score > before + 0.5
    assert int((model[1].weight[:, :392] != 0).sum()) == 0  # pruned stays pruned
    assert not hasattr(model[1], "parametrizations")  # the holding masks are baked


def test_user_length_turns_early_stopping_off():
    fixed = RECOVERY["prune"].with_(lr=5e-4, epochs=3)
    assert (fixed.lr, fixed.max_epochs, fixed.patience) == (5e-4, 3, 0)
    assert fixed.self_distill == RECOVERY["prune"].self_distill

import copy

import pytest
import torch
from torch import nn

from netpress.bake import bake
from netpress.config import Config
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.targets import Targets
from netpress.techniques.prune import (
    GradualPrune,
    IterativePrune,
    LayerSparsity,
    MagnitudePrune,
    overall_sparsity,
    prune_to,
    weight_sparsity,
)
from netpress.zoo import build_model


def _model():
    torch.manual_seed(0)
    return build_model("lenet-300-100")


def test_layer_scope_is_exact_per_layer():
    m = _model()
    prune_to(m, 0.9, scope="layer")
    for name, w in (("1", m[1].weight), ("3", m[3].weight), ("5", m[5].weight)):
        assert int((w == 0).sum()) == round(0.9 * w.numel()), name


def test_global_scope_is_exact_overall_with_overrides():
    m = _model()
    with torch.no_grad():
        m[5].weight.mul_(100)  # large weights: global ranking should spare them
    prune_to(m, 0.8, scope="global", overrides=(LayerSparsity("re:[13]", 0.5),))
    for name in ("1", "3"):
        w = getattr(m, name).weight if False else m[int(name)].weight
        assert int((w == 0).sum()) == round(0.5 * w.numel())
    # the global pool is only layer 5 here: exact there
    assert int((m[5].weight == 0).sum()) == round(0.8 * m[5].weight.numel())
    m2 = _model()
    with torch.no_grad():
        m2[5].weight.mul_(100)
    prune_to(m2, 0.8, scope="global")
    total = sum(m2[i].weight.numel() for i in (1, 3, 5))
    zeros = sum(int((m2[i].weight == 0).sum()) for i in (1, 3, 5))
    assert zeros == round(0.8 * total)
    assert weight_sparsity(m2, Targets())["5"] < 0.8  # scaled-up layer pruned less


def test_masks_survive_finetuning_and_bake_is_idempotent(digits):
    m = _model()
    ctx = Context(digits)
    MagnitudePrune(0.75, scope="layer")  # registered
    from netpress.config import apply

    apply(m, MagnitudePrune(0.75, scope="layer", finetune_epochs=1, lr=1e-3), ctx)
    zero_before = m[1].weight == 0
    ctx.finetune(m, 1, lr=1e-2)
    assert torch.equal(m[1].weight == 0, zero_before)  # nothing revived
    assert overall_sparsity(m, Targets()) == pytest.approx(
        sum(round(0.75 * m[i].weight.numel()) for i in (1, 3, 5))
        / sum(m[i].weight.numel() for i in (1, 3, 5)))
    x = digits.test[0][:20]
    before = m(x)
    bake(m)
    assert not any(hasattr(mod, "parametrizations") for mod in m.modules())
    once = copy.deepcopy(m.state_dict())
    bake(m)
    assert all(torch.equal(once[k], v) for k, v in m.state_dict().items())
    assert torch.allclose(m(x), before)
    assert int((m[1].weight == 0).sum()) == round(0.75 * m[1].weight.numel())


def test_rising_sparsity_never_revives():
    m = _model()
    prune_to(m, 0.5, scope="global")
    first = m[1].weight == 0
    prune_to(m, 0.7, scope="global")
    assert bool((m[1].weight == 0)[first].all())


def test_agp_reaches_final_sparsity_exactly(digits):
    m = _model()
    cfg = GradualPrune(sparsity=0.9, epochs=2, frequency=3, lr=1e-3)
    from netpress.config import apply

    acc_dense = Context(digits).evaluate(m)
    apply(m, cfg, Context(digits))
    total = sum(m[i].weight.numel() for i in (1, 3, 5))
    zeros = sum(int((m[i].weight == 0).sum()) for i in (1, 3, 5))
    assert zeros == round(0.9 * total)
    assert Context(digits).evaluate(m) > max(0.5, acc_dense)  # it trained, not just pruned


def test_iterative_threshold_rises(digits):
    m = _model()
    from netpress.config import apply

    apply(m, IterativePrune(quality=1.0, iterations=2, epochs_per_iteration=1), Context(digits))
    s = weight_sparsity(m, Targets())
    # |w| <= 1 std of a roughly uniform init removes more than half of each layer
    assert all(0.5 < v < 0.75 for v in s.values()), s


def test_config_validation_and_round_trip():
    with pytest.raises(ConfigError):
        MagnitudePrune(1.2)
    with pytest.raises(ConfigError):
        GradualPrune(sparsity=0.5, initial_sparsity=0.6)
    cfg = MagnitudePrune(0.9, overrides=(LayerSparsity("re:fc.*", 0.5),),
                         targets=Targets(ignore=("5",)))
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert Config.from_dict(GradualPrune(0.8).to_dict()) == GradualPrune(0.8)


def test_no_target_is_an_error():
    with pytest.raises(ConfigError, match="nothing to prune"):
        prune_to(nn.Sequential(nn.ReLU()), 0.5)

"""The pruning budget search: highest sparsity whose recovered val score keeps the budget."""

import pytest

from netpress import api
from netpress.bake import bake
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.recovery import Recovery
from netpress.targets import Targets
from netpress.techniques.prune.budget import prune_to_budget
from netpress.techniques.prune.masking import overall_sparsity

FAST = Recovery(lr=1e-3, max_epochs=3, patience=1, self_distill=0.5)


@pytest.fixture(scope="module")
def trained(digits):
    model, _ = api.train("lenet-300-100", digits, epochs=3, seed=0)
    return model


def test_budget_search_keeps_the_highest_rung_within_budget(digits, trained):
    import copy

    ctx = Context(digits)
    model = copy.deepcopy(trained)
    base = ctx.evaluate(model)
    ladder = (0.5, 0.9, 0.97, 0.995, 0.999)
    res = prune_to_budget(model, ctx, 1.0, ladder=ladder, settings=FAST, final=None)
    steps = res.steps
    kept = [s["sparsity"] for s in steps if s["within_budget"]]
    assert [s["sparsity"] for s in steps] == list(ladder[:len(steps)])
    # the walk stops at the first rung over budget; every earlier rung was within it
    assert all(s["within_budget"] for s in steps[:-1])
    assert steps[-1]["within_budget"] is False or len(steps) == len(ladder)
    assert kept and kept[-1] >= 0.9 and res.sparsity == pytest.approx(kept[-1], abs=1e-4)
    score = ctx.evaluate(model)
    assert score >= base - 0.01 - 1e-9  # the kept model is within the 1 pp budget
    assert score == pytest.approx(next(s["val_score"] for s in steps if s["sparsity"] == kept[-1]))
    bake(model)
    assert overall_sparsity(model, Targets()) == pytest.approx(kept[-1], abs=1e-4)
    # a rung that loses everything is never kept
    assert 0.999 not in kept


def test_budget_search_rejects_bad_ladders(digits, trained):
    with pytest.raises(ConfigError, match="ladder"):
        prune_to_budget(trained, Context(digits), 0.5, ladder=(0.9, 0.5))
    with pytest.raises(ConfigError, match="max-drop-pp"):
        prune_to_budget(trained, Context(digits), -1.0)

"""The GPTQ-vs-RTN rule: ``w*-gptq`` keeps whichever scores higher on validation."""

import copy

import pytest
import torch

from netpress import api
from netpress.context import Context
from netpress.techniques.quantize.weight_only import (
    WeightOnly,
    gptq_batches,
    gptq_or_rtn,
    quantize_weights,
)


@pytest.fixture(scope="module")
def trained(digits):
    model, _ = api.train("lenet-300-100", digits, epochs=2, seed=0)
    return model


@pytest.mark.parametrize("bits", [2, 4])
def test_kept_method_scores_at_least_rtn_on_validation(digits, trained, bits):
    ctx = Context(digits)
    cfg = WeightOnly(bits, 32, "gptq")
    q, info = gptq_or_rtn(trained, cfg, gptq_batches(ctx), ctx.evaluate)
    rtn = quantize_weights(copy.deepcopy(trained), WeightOnly(bits, 32, "rtn"))
    assert info["rtn_val"] == pytest.approx(ctx.evaluate(rtn))
    assert ctx.evaluate(q) == pytest.approx(max(info["gptq_val"], info["rtn_val"]))
    assert ctx.evaluate(q) >= ctx.evaluate(rtn)
    assert info["kept"] == ("gptq" if info["gptq_val"] >= info["rtn_val"] else "rtn")


def test_rtn_is_kept_when_it_scores_higher(digits, trained):
    ctx = Context(digits)
    rtn = quantize_weights(copy.deepcopy(trained), WeightOnly(4, 32, "rtn"))

    def prefers_rtn(m):  # 1 for RTN's exact weights, 0 for anything else
        mine, theirs = m.state_dict(), rtn.state_dict()
        return float(mine.keys() == theirs.keys()
                     and all(torch.equal(mine[k], theirs[k]) for k in mine))

    q, info = gptq_or_rtn(trained, WeightOnly(4, 32, "gptq"), gptq_batches(ctx), prefers_rtn)
    assert info == {"gptq_val": 0.0, "rtn_val": 1.0, "kept": "rtn"}
    assert prefers_rtn(q) == 1.0

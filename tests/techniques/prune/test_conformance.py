"""Every pruning config passes the same checks: round-trip, bake idempotent, save/load."""

import copy

import pytest
import torch

from netpress.api import load_model
from netpress.bake import bake
from netpress.config import Config, apply
from netpress.context import Context
from netpress.io import save_weights
from netpress.techniques.prune import (
    GradualPrune,
    IterativePrune,
    MagnitudePrune,
    NMSparsity,
    StructuredPrune,
)
from netpress.techniques.prune.resize import STRUCTURED_KEY, STRUCTURED_VALUE
from netpress.zoo import build_model

CONFIGS = [
    MagnitudePrune(0.8),
    GradualPrune(sparsity=0.8, epochs=1, frequency=2, self_distill=0.5),
    IterativePrune(quality=0.5, iterations=2, epochs_per_iteration=0),
    NMSparsity(2, 4),
    StructuredPrune(0.5, importance="l2", finetune_epochs=1, self_distill=0.5),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: type(c).__name__)
def test_check_technique(cfg, digits, tmp_path):
    assert Config.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(0)
    model = apply(build_model("lenet-300-100"), cfg, Context(digits))
    x = digits.test[0][:16]
    with torch.inference_mode():
        before = model(x)
    bake(model)
    once = copy.deepcopy(model.state_dict())
    bake(model)
    assert all(torch.equal(once[k], v) for k, v in model.state_dict().items())
    meta = {STRUCTURED_KEY: STRUCTURED_VALUE} if isinstance(cfg, StructuredPrune) else {}
    path = save_weights(model, tmp_path / "w.safetensors", meta)
    loaded = load_model("lenet-300-100", path)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), before, atol=1e-6)
        assert torch.equal(loaded(x), model(x))

import copy
import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from netpress import api
from netpress.config import Config
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.io import load_weights
from netpress.profile import count_params
from netpress.targets import Targets
from netpress.techniques.edits import EDITS_KEY, load_edited, read_metadata, save_edited
from netpress.techniques.lowrank import LowRank, LowRankLinear, Tucker2Conv, factorize, plan_ranks
from netpress.zoo import build_model


@pytest.fixture(scope="module")
def trained_mlp(digits):
    model, _ = api.train("lenet-300-100", digits, epochs=2, seed=0)
    return model


def _onnx_outputs(model, x, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: a second instead of ten for the torch.export one
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}}, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.numpy()})[0]


def test_energy_plan_and_full_rank_equivalence(trained_mlp):
    plan = plan_ranks(trained_mlp, LowRank(energy=0.9))
    assert set(plan) <= {"1", "3", "5"} and plan["1"]["kind"] == "svd"
    full = factorize(copy.deepcopy(trained_mlp), {"1": {"kind": "svd", "rank": 300}})
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(full(x), trained_mlp(x), atol=1e-4)


def test_params_budget_is_respected(trained_mlp):
    cfg = LowRank(rank_by="params", params_ratio=0.3)
    model = factorize(copy.deepcopy(trained_mlp), plan_ranks(trained_mlp, cfg))
    n, n0 = count_params(model), count_params(trained_mlp)
    assert n <= 0.3 * n0 and n > 0.25 * n0  # uses the budget, not far below it
    with pytest.raises(ConfigError, match="params-ratio"):
        plan_ranks(trained_mlp, LowRank(rank_by="params", params_ratio=0.001))


def test_factorized_model_round_trips_save_load_and_onnx(tmp_path, digits):
    torch.manual_seed(0)
    model = build_model("lenet5-caffe").eval()
    plan = {"conv2": {"kind": "tucker2", "ranks": [12, 6]}, "fc1": {"kind": "svd", "rank": 40},
            "conv1": {"kind": "cp", "rank": 4}}
    model = factorize(model, plan)
    assert isinstance(model.conv2, Tucker2Conv) and isinstance(model.fc1, LowRankLinear)
    path = save_edited(model, tmp_path / "lr.safetensors", "lenet5-caffe")
    meta = read_metadata(path)
    assert json.loads(meta[EDITS_KEY]) == [{"op": "lowrank", "layers": plan}]
    assert sorted(load_weights(path)) == sorted(model.state_dict())
    again = load_edited(path)
    x = digits.test[0][:8]
    with torch.no_grad():
        ref = model(x)
        assert torch.equal(again(x), ref)
    assert count_params(again) == count_params(model) < count_params(build_model("lenet5-caffe"))
    onnx_out = _onnx_outputs(again, x, tmp_path / "lr.onnx")
    np.testing.assert_allclose(onnx_out, ref.numpy(), atol=1e-4)
    # same weights → same bytes
    assert save_edited(again, tmp_path / "b.safetensors", "lenet5-caffe").read_bytes() == \
        path.read_bytes()


def test_handler_finetunes_and_config_round_trips(trained_mlp, digits):
    cfg = LowRank(rank_by="params", params_ratio=0.3, finetune_epochs=1, lr=1e-3,
                  ranks={"5": (5,)}, targets=Targets(types=("Linear",)))
    assert Config.from_dict(cfg.to_dict()) == cfg
    ctx = Context(digits)
    untuned = factorize(copy.deepcopy(trained_mlp), plan_ranks(trained_mlp, cfg))
    model = api.compress(copy.deepcopy(trained_mlp), [cfg], ctx)
    assert model[5].rank == 5
    assert count_params(model) == count_params(untuned) <= 0.3 * count_params(trained_mlp)
    assert ctx.evaluate(model) > ctx.evaluate(untuned)  # fine-tuning recovered accuracy


def test_sensitivity_picks_per_layer_energies(trained_mlp, digits):
    ctx = Context(digits)
    cfg = LowRank(rank_by="sensitivity", max_drop_pp=1.0, targets=Targets(names=("3",)))
    plan = plan_ranks(trained_mlp, cfg, ctx)
    model = factorize(copy.deepcopy(trained_mlp), plan)
    base = ctx.evaluate(trained_mlp)
    for name in plan:  # each layer alone stays within the allowed drop
        alone = factorize(copy.deepcopy(trained_mlp), {name: plan[name]})
        assert (base - ctx.evaluate(alone)) * 100 <= 1.0
    assert count_params(model) < count_params(trained_mlp)


@pytest.mark.parametrize("bad", [dict(energy=0.0), dict(params_ratio=1.5),
                                 dict(ranks={"1": (0,)}), dict(lr=0.0)])
def test_config_rejects_impossible_values(bad):
    with pytest.raises(ConfigError):
        LowRank(**bad)

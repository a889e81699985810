import numpy as np
import onnxruntime as ort
import pytest
import torch

from netpress.api import load_model
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.io import save_weights
from netpress.techniques.prune import (
    LayerSparsity,
    StructuredPrune,
    channel_counts,
    load_pruned_model,
    structured_prune,
)
from netpress.techniques.prune.resize import STRUCTURED_KEY, STRUCTURED_VALUE
from netpress.zoo import build_model


def _resnet():
    torch.manual_seed(0)
    return build_model("resnet-small").eval()


@pytest.mark.parametrize("importance", ["l1", "l2", "bn_scale", "taylor"])
def test_residual_concat_model_shrinks_and_keeps_shapes(digits, importance):
    m = _resnet()
    before = channel_counts(m)
    structured_prune(m, StructuredPrune(0.5, importance=importance, taylor_batches=1),
                     Context(digits))
    after = channel_counts(m)
    assert after["fc"] == 10  # the output layer is never pruned
    for name, c in before.items():
        if name != "fc":
            assert after[name] == c // 2, name
    # coupled layers shrank together: BN follows its conv, the add and concat still fit
    assert m.layer3.conv2[1].num_features == after["layer3.conv2.0"]
    assert m.fc.in_features == after["layer3.conv2.0"] + after["skip.1.0"]
    assert m(digits.test[0][:4]).shape == (4, 10)


def test_save_reload_and_onnx_export(digits, tmp_path):
    m = _resnet()
    structured_prune(m, StructuredPrune(0.5), Context(digits))
    path = save_weights(m, tmp_path / "small.safetensors", {STRUCTURED_KEY: STRUCTURED_VALUE})
    x = digits.test[0][:8]
    with torch.inference_mode():
        expect = m(x)
    for loaded in (load_pruned_model("resnet-small", path), load_model("resnet-small", path)):
        with torch.inference_mode():
            assert torch.equal(loaded(x), expect)
    onnx_path = tmp_path / "small.onnx"
    torch.onnx.export(m, (x[:1],), str(onnx_path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, expect.numpy(), rtol=1e-4, atol=1e-4)


def test_unmarked_shape_mismatch_is_still_an_error(digits, tmp_path):
    m = build_model("lenet5-caffe")
    structured_prune(m, StructuredPrune(0.5), Context(digits))
    path = save_weights(m, tmp_path / "plain.safetensors")
    with pytest.raises(Exception, match="do not fit|not marked"):
        load_pruned_model("lenet5-caffe", path)
    with pytest.raises(Exception, match="do not fit"):
        load_model("lenet5-caffe", path)


def test_overrides_global_and_ignore(digits):
    m = build_model("lenet5-caffe")
    cfg = StructuredPrune(0.5, overrides=(LayerSparsity("fc1", 0.8),))
    structured_prune(m, cfg, Context(digits))
    assert channel_counts(m) == {"conv1": 10, "conv2": 25, "fc1": 100, "fc2": 10}
    m = build_model("lenet5-caffe")
    from netpress.targets import Targets

    structured_prune(m, StructuredPrune(0.5, targets=Targets(ignore=("conv1",))),
                     Context(digits))
    assert channel_counts(m)["conv1"] == 20 and channel_counts(m)["conv2"] == 25
    m = build_model("lenet5-caffe")
    structured_prune(m, StructuredPrune(0.5, scope="global"), Context(digits))
    c = channel_counts(m)
    assert sum(c[k] for k in ("conv1", "conv2", "fc1")) < 0.55 * 570


def test_bn_scale_needs_batchnorm(digits):
    with pytest.raises(ConfigError, match="BatchNorm"):
        structured_prune(build_model("lenet5-caffe"), StructuredPrune(0.5, importance="bn_scale"),
                         Context(digits))


def test_steps_and_finetune_recover(digits):
    from netpress.api import train

    m, _ = train("lenet-300-100", digits, epochs=2)
    ctx = Context(digits)
    cfg = StructuredPrune(0.75, steps=2, epochs_between=1, finetune_epochs=1, lr=1e-3)
    structured_prune(m, cfg, ctx)
    assert channel_counts(m) == {"1": 75, "3": 25, "5": 10}  # floor(n × 0.25) kept
    assert m[3].in_features == 75
    assert ctx.evaluate(m) > 0.8


class _MobileBlock(torch.nn.Module):
    """A user's MobileNet-style model: depthwise + pointwise convolutions."""

    def __init__(self):
        super().__init__()
        c = torch.nn.Conv2d
        self.stem = torch.nn.Sequential(c(1, 16, 3, padding=1), torch.nn.ReLU())
        self.dw = torch.nn.Sequential(c(16, 16, 3, padding=1, groups=16), torch.nn.ReLU())
        self.pw = torch.nn.Sequential(c(16, 24, 1), torch.nn.ReLU())
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                        torch.nn.Linear(24, 10))

    def forward(self, x):
        return self.head(self.pw(self.dw(self.stem(x))))


def test_depthwise_groups_survive_save_and_reload(digits, tmp_path):
    from netpress.techniques.prune.resize import resize_to_state

    torch.manual_seed(0)
    m = _MobileBlock().eval()
    structured_prune(m, StructuredPrune(0.5), Context(digits))
    assert m.dw[0].groups == m.dw[0].in_channels == m.dw[0].out_channels < 16
    path = save_weights(m, tmp_path / "mobile.safetensors", {STRUCTURED_KEY: STRUCTURED_VALUE})
    from netpress.io import load_weights

    fresh = resize_to_state(_MobileBlock().eval(), load_weights(path))
    fresh.load_state_dict(load_weights(path))
    x = digits.test[0][:4]
    with torch.inference_mode():
        assert fresh.dw[0].groups == m.dw[0].groups
        assert torch.equal(fresh(x), m(x))

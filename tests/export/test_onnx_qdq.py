import copy

import onnx
import pytest
import torch

from netpress import api
from netpress.context import Context
from netpress.export.onnx import export_onnx
from netpress.export.runtimes import openvino_available, openvino_runner, ort_runner, runner_logits
from netpress.techniques.quantize.ptq import StaticInt8, apply_static_int8, dynamic_int8


@pytest.fixture(scope="module")
def trained(digits):
    model, _ = api.train("lenet5", digits, epochs=2, seed=0)
    return model


def test_qdq_onnx_matches_fake_quant(trained, digits, tmp_path):
    q = apply_static_int8(copy.deepcopy(trained), StaticInt8(), Context(digits))
    x, y = digits.test
    path = export_onnx(q, x[:1], tmp_path / "q.onnx")
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [i for i in proto.graph.initializer
                    if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2]
    assert len(int8_weights) == 5  # every conv/linear weight stored as int8
    with torch.no_grad():
        ref = q(x)
    out = runner_logits(ort_runner(path), x)
    # int8 kernels against the simulation: one activation step of the logits at most
    assert float((out - ref).abs().max()) < 0.02
    assert float((out.argmax(1) == ref.argmax(1)).float().mean()) >= 0.99
    fp32 = export_onnx(trained, x[:1], tmp_path / "fp.onnx")
    assert path.stat().st_size < 0.4 * fp32.stat().st_size


def test_static_int8_keeps_accuracy(trained, digits):
    q = apply_static_int8(copy.deepcopy(trained), StaticInt8(method="percentile"), Context(digits))
    base, acc = api.evaluate(trained, digits).accuracy, api.evaluate(q, digits).accuracy
    assert abs(base - acc) <= 0.02


def test_dynamic_int8_matches_fp32(trained, digits):
    x, _ = digits.test
    dq = dynamic_int8(trained)
    with torch.no_grad():
        assert float((dq(x) - trained(x)).abs().max()) < 0.1


@pytest.mark.skipif(not openvino_available(), reason="openvino extra not installed")
def test_openvino_runs_qdq(trained, digits, tmp_path):
    q = apply_static_int8(copy.deepcopy(trained), StaticInt8(), Context(digits))
    x, _ = digits.test
    path = export_onnx(q, x[:1], tmp_path / "q.onnx")
    out = runner_logits(openvino_runner(path), x)
    with torch.no_grad():
        ref = q(x)
    assert float((out.argmax(1) == ref.argmax(1)).float().mean()) >= 0.97

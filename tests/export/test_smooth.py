"""Activation smoothing: the smoothed float graph computes what the original computes,
every MatMul / Attention input gets its Mul, and on an encoder with an outlier channel
the smoothed int8 graph is closer to float than plain dynamic int8."""

import numpy as np
import onnx
import pytest
import torch

from netpress.export.int8 import int8_dynamic, ort_dynamic
from netpress.export.onnx import export_onnx
from netpress.export.runtimes import ort_runner
from netpress.export.smooth import input_ranges, smooth, smoothable
from netpress.profile.throughput import held_out_batches


@pytest.fixture(scope="module")
def enc(tiny_text_models, tmp_path_factory):
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    model = build_model(spec).eval()
    with torch.no_grad():  # an outlier channel in every LayerNorm output, as in real BERTs
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight[3] = 25.0
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    d = tmp_path_factory.mktemp("smooth")
    fp = export_onnx(model, task.example_inputs(1, "train"), d / "fp32.onnx")
    return model, task, fp, d


def test_smoothed_float_graph_is_the_same_function(enc):
    model, task, fp, d = enc
    proto = onnx.load(str(fp))
    ranges = input_ranges(proto, held_out_batches(task.part("calib")[0], 8))
    assert len(ranges) == len({proto.graph.node[k].input[0] for k in smoothable(proto)}) > 0
    assert all(r.ndim == 1 and (r >= 0).all() for r in ranges.values())
    sm = smooth(proto, ranges, alpha=0.85)
    muls = [n for n in sm.graph.node if n.name.endswith("_smooth")]
    assert len(muls) == len(smoothable(proto))
    onnx.save(sm, str(d / "sm.onnx"))
    a, _ = task.runner_outputs(ort_runner(fp), "test")
    b, _ = task.runner_outputs(ort_runner(d / "sm.onnx"), "test")
    assert float((a - b).abs().max() / a.abs().max()) < 1e-5
    with pytest.raises(ValueError):
        smooth(proto, ranges, alpha=1.5)


def test_smoothing_brings_int8_closer_to_float(enc):
    model, task, fp, d = enc
    ref, _ = task.runner_outputs(ort_runner(fp), "test")
    plain, _ = task.runner_outputs(ort_runner(ort_dynamic(fp, d / "plain.onnx")), "test")
    rec = int8_dynamic(fp, d / "best.onnx", task, alphas=(None, 0.5, 0.85))
    assert set(rec["alphas"]) == {"None", "0.5", "0.85"}
    assert rec["alpha"] == max((None, 0.5, 0.85), key=lambda a: rec["alphas"][str(a)])
    best, _ = task.runner_outputs(ort_runner(d / "best.onnx"), "test")
    cos = torch.nn.functional.cosine_similarity
    assert rec["alpha"] is not None  # the outlier makes plain int8 the worst here
    assert float(cos(best, ref).mean()) > float(cos(plain, ref).mean())
    assert rec["val_score"] == pytest.approx(rec["alphas"][str(rec["alpha"])])


def test_a_graph_without_matmuls_is_not_smoothed(tmp_path):
    from netpress.data import load_split
    from netpress.tasks import ImageClassification
    from netpress.zoo import build_model

    model = build_model("lenet5").eval()
    task = ImageClassification(load_split("digits"))
    fp = export_onnx(model, task.example_inputs(1, "train"), tmp_path / "m.onnx")
    rec = int8_dynamic(fp, tmp_path / "q.onnx", task)
    assert list(rec["alphas"]) == ["None"] and rec["alpha"] is None
    assert np.isfinite(rec["val_score"])


def test_shared_weights_and_unnamed_nodes_get_their_own_names():
    from onnx import TensorProto, helper, numpy_helper

    from netpress.export.runtimes import ort_session

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("MatMul", ["x", "w"], ["b"]),
         helper.make_node("Add", ["a", "b"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [w])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    x[:, 1] *= 30  # an outlier channel
    x[:, 2] = 0  # a channel silent on calibration
    ranges = {"x": np.abs(x).max(0)}
    sm = smooth(proto, ranges, alpha=0.85)
    onnx.checker.check_model(sm)
    names = [o for n in sm.graph.node for o in n.output] + [i.name for i in sm.graph.initializer]
    assert len(names) == len(set(names))
    assert "w" not in {i.name for i in sm.graph.initializer}  # both users have their copy
    inv = [numpy_helper.to_array(i) for i in sm.graph.initializer if "inv" in i.name]
    assert len(inv) == 2 and all(float(a.max()) < 1e3 for a in inv)  # silent channel clamped
    want = ort_session(proto.SerializeToString(), 1).run(None, {"x": x})[0]
    got = ort_session(sm.SerializeToString(), 1).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_weights_are_7_bit_on_cpus_without_vnni(enc, monkeypatch):
    import onnxruntime.quantization as q

    from netpress.export import int8

    assert int8.cpu_has_vnni("flags\t: fpu avx2 avx512_vnni") and not int8.cpu_has_vnni("flags: avx2")
    seen = []
    real = q.quantize_dynamic
    monkeypatch.setattr(q, "quantize_dynamic",
                        lambda *a, **k: seen.append(k["reduce_range"]) or real(*a, **k))
    model, task, fp, d = enc
    monkeypatch.setattr(int8, "cpu_has_vnni", lambda: False)
    ort_dynamic(fp, d / "avx2.onnx")
    monkeypatch.setattr(int8, "cpu_has_vnni", lambda: True)
    ort_dynamic(fp, d / "vnni.onnx")
    ort_dynamic(fp, d / "forced.onnx", reduce_range=True)
    assert seen == [True, False, True]

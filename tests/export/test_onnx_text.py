"""ONNX export of Hugging Face wrappers (dict inputs): named inputs, dynamic batch and
sequence axes, ONNX Runtime runners fed from dicts, and the static int8 QDQ graph."""

import copy

import onnx
import pytest
import torch

from netpress.context import Context
from netpress.errors import ModelError
from netpress.export.onnx import export_onnx
from netpress.export.runtimes import feeds, ort_runner, runner_logits
from netpress.techniques.quantize.ptq import StaticInt8, apply_static_int8

TEXTS = ["a much longer text with many words in it, longer than any text of the task",
         "fox", "the quick brown fox", "rain", "lazy dog while rain falls"]


@pytest.fixture(scope="module")
def text(tiny_text_models):
    from netpress.data.text import tokenize
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model
    from netpress.zoo.hf import load_tokenizer

    out = {}
    for kind, data in (("enc", "text"), ("cls", "labelled")):
        spec = tiny_text_models[kind]
        model = build_model(spec).eval()
        task = load_task(spec, tiny_text_models[data], model, text=TextOptions(max_length=12))
        out[kind] = model, task
    # another batch size and sequence length than the export example, with padding
    out["batch"] = tokenize(load_tokenizer(tiny_text_models["enc"][3:]), TEXTS, 32)
    return out


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("kind", ["enc", "cls"])
def test_dict_inputs_export_with_named_dynamic_axes(text, kind, tmp_path):
    model, task = text[kind]
    example = task.example_inputs(1, "test")  # batch 1, the test part's padded length
    path = export_onnx(model, example, tmp_path / "m.onnx")
    proto = onnx.load(path)
    assert [i.name for i in proto.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(_dims(i) == ["batch", "sequence"] for i in proto.graph.input)
    assert [o.name for o in proto.graph.output] == ["output"]
    assert _dims(proto.graph.output[0])[0] == "batch"
    x = text["batch"]
    assert x["input_ids"].shape[0] == 5 and x["input_ids"].shape[1] != example["input_ids"].shape[1]
    assert int(x["attention_mask"].sum()) < x["attention_mask"].numel()  # padded rows
    out = ort_runner(path)(x)
    with torch.no_grad():
        ref = model(**x)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-4


def test_static_int8_text_model_exports_int8_weights(text, tmp_path):
    model, task = text["enc"]
    q = apply_static_int8(copy.deepcopy(model), StaticInt8(), Context(task))
    path = export_onnx(q, task.example_inputs(1, "test"), tmp_path / "q.onnx")
    proto = onnx.load(path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in proto.graph.node}
    int8 = [i for i in proto.graph.initializer
            if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]
    assert len(int8) == 12  # q, k, v, attention output, FFN in and out of both layers
    x = text["batch"]
    out = runner_logits(ort_runner(path), x)
    with torch.no_grad():
        fake, fp = q(**x), model(**x)
    cos = torch.nn.functional.cosine_similarity(out, fp).min()
    assert float((out - fake).abs().max()) < 0.05 * float(fake.abs().max())  # int8 kernels
    assert 0.98 < float(cos) < 1.0  # quantized, and close to the float model


def test_feeds_give_the_graph_its_inputs_only():
    x = {"input_ids": torch.ones(2, 3, dtype=torch.long), "token_type_ids": torch.zeros(2, 3)}
    assert list(feeds(["input_ids"], x)) == ["input_ids"]
    assert list(feeds(["input"], torch.zeros(2, 4))) == ["input"]
    with pytest.raises(ModelError, match="attention_mask"):
        feeds(["input_ids", "attention_mask"], x)
    with pytest.raises(ModelError, match="takes 2 inputs"):
        feeds(["a", "b"], torch.zeros(1))

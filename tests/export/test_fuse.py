"""Fused transformer export: ONNX Runtime's optimiser turns netpress's export of a Hugging
Face encoder into Attention / SkipLayerNorm / BiasGelu kernels that compute what torch
computes, for pruned heads too, and the dynamic int8 quantizer takes the fused graph."""

import copy
from collections import Counter

import onnx
import pytest
import torch

from netpress.config import apply
from netpress.context import Context
from netpress.export.fuse import eager_attention, fuse_transformer
from netpress.export.int8 import ort_dynamic
from netpress.export.onnx import export_onnx, export_onnx_model
from netpress.export.runtimes import ort_runner
from netpress.techniques.prune.transformer import TransformerPrune

TEXTS = ["a much longer text with many words in it, longer than any text of the task",
         "fox", "the quick brown fox", "rain", "lazy dog while rain falls"]


@pytest.fixture(scope="module")
def enc(tiny_text_models):
    from netpress.data.text import tokenize
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model
    from netpress.zoo.hf import load_tokenizer

    spec = tiny_text_models["enc"]
    model = build_model(spec).eval()
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    batch = tokenize(load_tokenizer(spec[3:]), TEXTS, 32)  # padded, longer than the example
    return model, task, batch


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(path).graph.node)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_encoder_is_fused_and_matches_torch(enc, tmp_path):
    model, task, batch = enc
    info: dict = {}
    path = export_onnx(model, task.example_inputs(1, "test"), tmp_path / "m.onnx", info=info)
    ops = _ops(path)
    assert info["fuse_note"] == ""
    assert ops["Attention"] == 2 and ops["SkipLayerNormalization"] == 4  # two layers
    assert ops["EmbedLayerNormalization"] == 1 and ops["Softmax"] == 0
    assert info["fused"]["Attention"] == 2
    assert model.model.config._attn_implementation != "eager"  # restored after export
    with torch.no_grad():
        ref = model(**batch)
    assert _rel(ort_runner(path)(batch), ref) < 1e-5


def test_fuse_false_keeps_the_plain_graph(enc, tmp_path):
    model, task, _ = enc
    path = export_onnx(model, task.example_inputs(1, "test"), tmp_path / "m.onnx", fuse=False)
    assert _ops(path)["Attention"] == 0 and _ops(path)["MatMul"] > 0


def test_pruned_heads_keep_their_count_per_layer(enc, tmp_path):
    model, task, batch = enc
    pruned = apply(copy.deepcopy(model), TransformerPrune(heads=0.5, ffn=0.25, scope="layer",
                                                          batches=2), Context(task))
    heads = [lay.attention.self.num_attention_heads for lay in pruned.model.encoder.layer]
    assert heads == [2, 2]
    path = export_onnx(pruned, task.example_inputs(1, "test"), tmp_path / "p.onnx")
    attn = [n for n in onnx.load(path).graph.node if n.op_type == "Attention"]
    assert [next(a.i for a in n.attribute if a.name == "num_heads") for n in attn] == heads
    with torch.no_grad():
        ref = pruned(**batch)
    assert _rel(ort_runner(path)(batch), ref) < 1e-5


def test_dynamic_int8_quantizes_the_fused_attention(enc, tmp_path):
    model, task, batch = enc
    fp = export_onnx(model, task.example_inputs(1, "test"), tmp_path / "m.onnx")
    q = ort_dynamic(fp, tmp_path / "q.onnx")
    ops = _ops(q)
    assert ops["QAttention"] == 2 and ops["Attention"] == 0
    assert ops["MatMulInteger"] == 6  # attention output, FFN in and out
    int8 = [i for i in onnx.load(q).graph.initializer
            if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]
    assert len(int8) == 8  # per layer: packed QKV, attention output, FFN in, FFN out
    with torch.no_grad():
        ref = model(**batch)
    cos = torch.nn.functional.cosine_similarity(ort_runner(q)(batch), ref)
    assert 0.98 < float(cos.min()) < 1.0  # quantized, and close


def test_a_model_without_fusions_exports_plain_with_a_note(tiny_text_models, make_tiny_hf, tmp_path):
    from netpress.zoo import build_model

    lm = build_model(make_tiny_hf("lm")).eval()
    ids = torch.randint(200, 2000, (1, 6))
    info: dict = {}
    path = export_onnx(lm, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                       tmp_path / "lm.onnx", info=info)
    assert "gpt2" in info["fuse_note"] and _ops(path)["Attention"] == 0
    with torch.no_grad():
        ref = lm(input_ids=ids, attention_mask=torch.ones_like(ids))
    out = ort_runner(path)({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert _rel(out, ref) < 1e-4


def test_a_wrong_fusion_is_refused(enc, monkeypatch):
    """A fused graph that disagrees with the unfused one is not kept."""
    import netpress.export.fuse as fuse

    model, task, _ = enc
    example = task.example_inputs(1, "test")
    with eager_attention(model):
        proto = export_onnx_model(model, example)
    real = fuse._outputs
    calls = []

    def skewed(p, x):
        calls.append(1)
        out = real(p, x)
        return out if len(calls) == 1 else out + 1.0  # the second call is the fused graph

    monkeypatch.setattr(fuse, "_outputs", skewed)
    res = fuse_transformer(proto, model, example)
    assert res.proto is proto and "differs" in res.note and res.fused == {}


@pytest.mark.parametrize("pruned", [False, True])
def test_weight_only_graph_is_fused_around_its_matmulnbits(enc, pruned, tmp_path):
    from netpress.export.nbits import export_nbits
    from netpress.techniques.quantize.weight_only import WeightOnly, quantize_weights

    model, task, batch = enc
    model = copy.deepcopy(model)
    if pruned:
        model = apply(model, TransformerPrune(heads=0.5, ffn=0.25, scope="layer", batches=2),
                      Context(task))
    q = quantize_weights(model, WeightOnly(bits=4, group_size=16, method="rtn", embedding_bits=4))
    info: dict = {}
    path = export_nbits(q, task.example_inputs(1, "test"), tmp_path / "w4.onnx", info=info)
    ops = _ops(path)
    assert info["fuse_note"] == "" and ops["MultiHeadAttention"] == 2
    assert ops["MatMulNBits"] == 12 and ops["GatherBlockQuantized"] == 1  # Q, K, V apart
    assert ops["SkipLayerNormalization"] >= 3 and ops["Softmax"] == 0
    heads = [lay.attention.self.num_attention_heads for lay in model.model.encoder.layer]
    mha = [n for n in onnx.load(path).graph.node if n.op_type == "MultiHeadAttention"]
    assert [next(a.i for a in n.attribute if a.name == "num_heads") for n in mha] == heads
    with torch.no_grad():
        ref = q(**batch)
    assert _rel(ort_runner(path)(batch), ref) < 1e-5

"""Weight-only GPTQ on a tiny randomly initialised HF BertModel (transformers optional)."""

import copy

import pytest
import torch

transformers = pytest.importorskip("transformers")

from netpress.targets import Targets  # noqa: E402
from netpress.techniques.quantize.storage import load_packed, save_packed  # noqa: E402
from netpress.techniques.quantize.weight_only import (  # noqa: E402
    WeightOnly,
    layer_hessian,
    quantize_weights,
)


def _bert():
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=128,
                                  max_position_embeddings=32)
    torch.manual_seed(0)
    return transformers.BertModel(cfg).eval()


def _batches(n=4):
    g = torch.Generator().manual_seed(1)
    return [{"input_ids": torch.randint(0, 100, (8, 16), generator=g)} for _ in range(n)]


def test_gptq_beats_rtn_on_bert_layer_output():
    model = _bert()
    name = "encoder.layer.0.intermediate.dense"
    batches = _batches()
    layer = dict(model.named_modules())[name]
    h = layer_hessian(model, layer, batches)
    errs = {}
    for method in ("rtn", "gptq"):
        m = copy.deepcopy(model)
        quantize_weights(m, WeightOnly(bits=4, group_size=32, method=method,
                                       targets=Targets(types=("Linear",), names=(name,))),
                         batches)
        dw = dict(m.named_modules())[name].weight.detach() - layer.weight.detach()
        errs[method] = float(torch.trace(dw.double() @ h @ dw.double().T))
    assert errs["gptq"] < 0.8 * errs["rtn"]


def test_whole_bert_w4_packs_and_reloads(tmp_path):
    model = _bert()
    batches = _batches(2)
    ref_fp = model(**batches[0]).last_hidden_state
    quantize_weights(model, WeightOnly(bits=4, group_size=32, method="gptq",
                                       targets=Targets(types=("Linear",))), batches)
    with torch.no_grad():
        out = model(**batches[0]).last_hidden_state
    rel = float((out - ref_fp.detach()).norm() / ref_fp.detach().norm())
    assert rel < 0.25
    path = save_packed(model, tmp_path / "bert-w4.safetensors")
    with torch.no_grad():
        again = load_packed(_bert(), path)(**batches[0]).last_hidden_state
    assert torch.allclose(again, out, atol=1e-5)

"""Dynamic int8 in ONNX Runtime under a validation budget: the most sensitive layers stay
float, as few as the budget allows, chosen on validation."""

import onnx
import pytest

from netpress.errors import ConfigError
from netpress.export.int8 import int8_within, ort_dynamic, quantizable_nodes
from netpress.export.onnx import export_onnx


@pytest.fixture(scope="module")
def enc(tiny_text_models, tmp_path_factory):
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    model = build_model(spec).eval()
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    fp = export_onnx(model, task.example_inputs(1, "test"), tmp_path_factory.mktemp("i8") / "fp.onnx")
    return task, fp


def _float_nodes(path) -> set[str]:
    return {n.name for n in onnx.load(path).graph.node if n.op_type in ("MatMul", "Attention")}


def test_quantizable_nodes_of_a_fused_encoder(enc):
    _, fp = enc
    nodes = quantizable_nodes(onnx.load(fp))
    ops = {n.name: n.op_type for n in onnx.load(fp).graph.node}
    assert sorted(ops[n] for n in nodes).count("Attention") == 2
    assert sorted(ops[n] for n in nodes).count("MatMul") == 6  # attention out, FFN in/out
    assert "EmbedLayerNormalization" in {ops[n] for n in nodes}


def test_a_wide_budget_quantizes_everything(enc, tmp_path):
    task, fp = enc
    rec = int8_within(fp, tmp_path / "q.onnx", task, max_drop_pp=100)
    assert rec["kept_float"] == [] and rec["sensitivity"] == {}
    assert rec["val_score"] == rec["val_score_all_int8"] < rec["val_score_fp32"]
    assert _float_nodes(tmp_path / "q.onnx") == set()


def test_a_tight_budget_keeps_the_most_sensitive_layers_float(enc, tmp_path):
    task, fp = enc
    full = int8_within(fp, tmp_path / "all.onnx", task, max_drop_pp=100)
    drop = (full["val_score_fp32"] - full["val_score_all_int8"]) * 100
    rec = int8_within(fp, tmp_path / "q.onnx", task, max_drop_pp=drop / 3)
    kept = rec["kept_float"]
    assert 1 <= len(kept) < len(quantizable_nodes(onnx.load(fp)))
    assert rec["val_score"] >= rec["val_score_fp32"] - drop / 300
    sens = rec["sensitivity"]
    assert set(sens) == set(quantizable_nodes(onnx.load(fp)))
    # the kept ones are the most sensitive: leaving each float alone helped most
    assert min(sens[n] for n in kept) >= max(v for n, v in sens.items() if n not in kept)
    assert {n for n in kept if not n.startswith("EmbedLayer")} <= _float_nodes(tmp_path / "q.onnx")


def test_exclusion_keeps_a_node_float(enc, tmp_path):
    _, fp = enc
    node = next(n for n in quantizable_nodes(onnx.load(fp)) if "intermediate" in n)
    q = ort_dynamic(fp, tmp_path / "q.onnx", exclude=[node])
    assert _float_nodes(q) == {node}


def test_a_negative_budget_is_refused(enc, tmp_path):
    task, fp = enc
    with pytest.raises(ConfigError, match="max-drop-pp"):
        int8_within(fp, tmp_path / "q.onnx", task, max_drop_pp=-1)
    assert not (tmp_path / "q.onnx").exists()


def test_a_gemm_kept_float_stays_float(tmp_path):
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    fp = export_onnx(model, torch.zeros(1, 8), tmp_path / "mlp.onnx")
    nodes = quantizable_nodes(onnx.load(fp))
    assert len(nodes) == 2 and all("Gemm" in n for n in nodes)
    q = ort_dynamic(fp, tmp_path / "q.onnx", exclude=[nodes[0]])
    ops = [n.op_type for n in onnx.load(q).graph.node]
    assert ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul") == 1
    assert "Gemm" in ops or "MatMul" in ops  # the first layer is still float


def test_an_unfused_token_table_can_be_kept_float(make_tiny_hf, tmp_path):
    import torch

    from netpress.zoo import build_model

    lm = build_model(make_tiny_hf("lm")).eval()
    ids = torch.randint(200, 2000, (1, 6))
    fp = export_onnx(lm, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path / "lm.onnx")
    ops = {n.name: n.op_type for n in onnx.load(fp).graph.node}
    assert "Gather" in {ops[n] for n in quantizable_nodes(onnx.load(fp))}

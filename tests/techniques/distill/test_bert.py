"""BERT-family encoders: keep every k-th layer, distil sentence embeddings, tie layers.

Uses a tiny randomly initialised ``BertModel`` (no download); skipped when the optional
``transformers`` extra is not installed.
"""

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from netpress.context import Context
from netpress.data import Split
from netpress.techniques.distill import Distill, distill_into, keep_every
from netpress.techniques.distill.distill import pooled
from netpress.techniques.edits import load_edited, save_edited
from netpress.techniques.share import tie

transformers = pytest.importorskip("transformers")


def tiny_bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=4,
                                  num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=16, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    return transformers.BertModel(cfg).eval()


def text_split() -> Split:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 64, (64, 8), generator=g)
    y = torch.zeros(64, dtype=torch.int64)
    part = (ids, y)
    return Split("toy-text", part, part, part, part, 2, ("a", "b"))


def mse(a, b, x):
    with torch.no_grad():
        return float(F.mse_loss(pooled(a.eval()(x)), pooled(b.eval()(x))))


def test_keep_every_kth_layer_and_embedding_distillation():
    teacher = tiny_bert()
    student = keep_every(teacher, "encoder.layer", 2)
    assert len(student.encoder.layer) == 2 and student.config.num_hidden_layers == 2
    assert torch.equal(student.encoder.layer[1].output.dense.weight,
                       teacher.encoder.layer[2].output.dense.weight)
    torch.manual_seed(1)
    student.pooler.dense.reset_parameters()  # a student that is not already the teacher
    split = text_split()
    x = split.val[0]
    before = mse(student, teacher, x)
    result = distill_into(student, teacher, Distill(objective="embedding_mse", epochs=4,
                                                    lr=3e-3), Context(split, batch_size=32))
    assert result.losses[-1] < result.losses[0]
    assert mse(student, teacher, x) < 0.5 * before


def test_albert_style_tying_stores_the_layer_once(tmp_path, monkeypatch):
    fake = types.ModuleType("netpress_test_bert")
    fake.tiny_bert = tiny_bert
    monkeypatch.setitem(sys.modules, "netpress_test_bert", fake)
    model = tie(tiny_bert(), [["encoder.layer.0", "encoder.layer.1", "encoder.layer.2",
                               "encoder.layer.3"]])
    assert model.encoder.layer[3].attention.self.query.weight is \
        model.encoder.layer[0].attention.self.query.weight
    path = save_edited(model, tmp_path / "albert.safetensors", "netpress_test_bert:tiny_bert")
    full = save_edited(tiny_bert(), tmp_path / "bert.safetensors", "netpress_test_bert:tiny_bert")
    layer_bytes = sum(p.numel() for p in model.encoder.layer[0].parameters()) * 4
    assert full.stat().st_size - path.stat().st_size >= 3 * layer_bytes
    again = load_edited(path)
    x = text_split().test[0][:4]
    with torch.no_grad():
        assert torch.equal(again(x).pooler_output, model(x).pooler_output)

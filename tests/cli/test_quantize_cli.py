import json

import pytest

from netpress.cli import main


@pytest.fixture(scope="module")
def weights(tmp_path_factory, digits):
    from netpress import api

    p = tmp_path_factory.mktemp("w") / "mlp.safetensors"
    api.train("lenet-300-100", digits, epochs=2, seed=0, out=p)
    return str(p)


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_quantize_int8_json_measures_every_form(capsys, weights, tmp_path):
    out_dir = tmp_path / "q"
    code, out, err = _run(capsys, "quantize", "-m", "lenet-300-100", "-w", weights, "-d",
                          "digits", "--scheme", "int8", "--backend", "onnxruntime",
                          "--out", str(out_dir), "--rounds", "1", "--json")
    assert code == 0, err
    rec = json.loads(out)
    names = [f["name"] for f in rec["forms"]]
    assert names[0] == "torch-fp32" and "onnxruntime-int8-static" in names
    assert "onnxruntime-int8-dynamic" in names and "onnxruntime-fp32" in names
    for f in rec["forms"]:
        assert f["latency_ms"]["batch1_p50"] > 0 and 0 < f["accuracy"] <= 1
    assert rec["chosen_form"] in names and rec["threads"] == 2
    assert rec["macs"] == 266_200 and rec["layers"][0]["bits_per_weight"] == 8
    int8 = next(f for f in rec["forms"] if f["name"] == "onnxruntime-int8-static")
    assert int8["size_bytes"] < 0.3 * rec["forms"][0]["size_bytes"]
    assert abs(int8["accuracy"] - rec["forms"][0]["accuracy"]) < 0.03
    files = sorted(p.name for p in out_dir.iterdir())
    assert "record.json" in files and "quantized.safetensors" in files
    assert json.loads((out_dir / "record.json").read_text())["chosen_form"] == rec["chosen_form"]


def test_quantize_weight_only_table(capsys, weights, tmp_path):
    code, out, err = _run(capsys, "quantize", "-m", "lenet-300-100", "-w", weights, "-d",
                          "digits", "--scheme", "w4-gptq", "--group-size", "64",
                          "--keep", "5", "--rounds", "1", "--out", str(tmp_path / "w4"))
    assert code == 0, err
    assert "torch-w4-gptq" in out and "chosen form" in out
    rec = json.loads((tmp_path / "w4" / "record.json").read_text())
    w4 = next(f for f in rec["forms"] if f["name"] == "torch-w4-gptq")
    assert w4["size_bytes"] < 0.25 * rec["forms"][0]["size_bytes"]
    assert rec["keep_float"] == ["5"]
    # the same codes in ONNX Runtime's MatMulNBits: the same accuracy, a file as small
    names = [f["name"] for f in rec["forms"]]
    assert names == ["torch-fp32", "torch-w4-gptq", "onnxruntime-fp32", "onnxruntime-w4-nbits"]
    assert rec["chosen_form"] == "torch-w4-gptq"
    nb = rec["forms"][-1]
    assert abs(nb["accuracy"] - w4["accuracy"]) < 1e-9
    assert nb["size_bytes"] < 1.3 * w4["size_bytes"]
    assert "model-nbits.onnx" in rec["out_files"]
    assert (tmp_path / "w4" / "model-nbits.onnx").stat().st_size == nb["size_bytes"]


def test_diagnose_names_worst_layers(capsys, weights):
    code, out, err = _run(capsys, "quantize-diagnose", "-m", "lenet-300-100", "-w", weights,
                          "-d", "digits", "--scheme", "w2-rtn", "--group-size", "0", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert [r["name"] for r in rep["layers"]] == ["1", "3", "5"] and len(rep["worst"]) == 3
    for r in rep["layers"]:
        assert 0 < r["weight_sqnr_db"] < 20  # 2-bit weights: a few dB


def test_diagnose_static_int8_names_the_clipping_layer(capsys, weights):
    code, out, err = _run(capsys, "quantize-diagnose", "-m", "lenet-300-100", "-w", weights,
                          "-d", "digits", "--scheme", "int8-static", "--observer", "minmax",
                          "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert [r["name"] for r in rep["layers"]] == ["1", "3", "5"] and rep["observer"] == "minmax"
    for r in rep["layers"]:
        assert r["input"]["clipped_share"] < 0.01  # min-max ranges clip (almost) nothing
        assert r["model_output_sqnr_db"] > 25  # int8 on one layer: a small error
        assert r["accumulated_output_sqnr_db"] <= r["output_sqnr_db"] + 1
    code, out, err = _run(capsys, "quantize-diagnose", "-m", "lenet-300-100", "-w", weights,
                          "-d", "digits", "--scheme", "int8-static")
    assert code == 0 and "input clipped" in out and "--keep" in out
    code, _, err = _run(capsys, "quantize-diagnose", "-m", "lenet-300-100", "-w", weights,
                        "-d", "digits", "--scheme", "int8-dynamic")
    assert code == 2 and "int8-static" in err


@pytest.mark.parametrize("args, msg", [
    (["--scheme", "int9"], "unknown scheme"),
    (["--scheme", "int8", "--backend", "tpu"], "unknown backend"),
    (["--scheme", "w4-rtn", "--bits-budget", "1"], "below the smallest width"),
])
def test_quantize_errors_are_one_line(capsys, weights, tmp_path, args, msg):
    code, _, err = _run(capsys, "quantize", "-m", "lenet-300-100", "-w", weights, "-d", "digits",
                        "--out", str(tmp_path / "x"), *args)
    assert code == 2 and msg in err and "Traceback" not in err


def test_quantize_mixed_budget_with_qat(capsys, weights, tmp_path):
    code, out, err = _run(capsys, "quantize", "-m", "lenet-300-100", "-w", weights, "-d",
                          "digits", "--scheme", "w3-rtn", "--group-size", "0",
                          "--bits-budget", "3", "--qat-epochs", "1", "--qat-lr", "1e-4",
                          "--rounds", "1", "--out", str(tmp_path / "mx"), "--json")
    assert code == 0, err
    rec = json.loads(out)
    mixed = rec["mixed_precision"]
    assert mixed["average_bits"] <= 3.0 and len(mixed["layers"]) == 3
    assert rec["qat_method"] == "lsq" and rec["qat_epochs"] == 1
    assert rec["weight_bits"] < 3.5

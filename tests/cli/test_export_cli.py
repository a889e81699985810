"""``netpress export`` as a user types it: image and text models, every form, the check
against torch, the timing against torch eager, and errors on one line."""

import json

import onnx
import pytest

from netpress.cli import main
from netpress.export.runtimes import ort_runner


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


FAST = ("--passes", "1", "--examples", "8", "--batch-sizes", "1,4", "--json")


@pytest.fixture(scope="module")
def weights(tmp_path_factory, digits):
    from netpress import api

    p = tmp_path_factory.mktemp("w") / "mlp.safetensors"
    api.train("lenet-300-100", digits, epochs=1, seed=0, out=p)
    return str(p)


def test_image_model_exports_checked_and_timed(capsys, weights, tmp_path):
    out = tmp_path / "m.onnx"
    code, o, err = run(capsys, "export", "-m", "lenet-300-100", "-w", weights, "-d", "digits",
                       "--out", str(out), *FAST)
    assert code == 0, err
    rec = json.loads(o)
    assert rec["form"] == "fp32" and rec["fused"] == {} and out.is_file()
    assert rec["check"]["max_rel_error"] < 1e-5 and rec["check"]["agreement"] == 1.0
    assert rec["check"]["score"] == pytest.approx(rec["check"]["torch_score"])
    assert set(rec["throughput"]["onnxruntime"]) == {"b1", "b4"}
    assert rec["throughput"]["torch"]["b1"]["vs_baseline"] == 1.0
    assert json.loads((tmp_path / "m.onnx.json").read_text())["file_bytes"] == out.stat().st_size
    # the file alone runs in a plain session
    assert ort_runner(out)(__import__("torch").zeros(2, 1, 28, 28)).shape == (2, 10)


def test_int8_dynamic_image_form_is_reported_not_held_to_float(capsys, weights, tmp_path):
    out = tmp_path / "q.onnx"
    code, o, err = run(capsys, "export", "-m", "lenet-300-100", "-w", weights, "-d", "digits",
                       "--out", str(out), "--form", "int8-dynamic", *FAST)
    assert code == 0, err
    rec = json.loads(o)
    assert rec["form"] == "int8-dynamic" and rec["check"]["agreement"] > 0.9
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")
               for n in onnx.load(out).graph.node)


def test_text_encoder_fused_int8_and_packed_w4(capsys, tiny_text_models, tmp_path):
    enc, text = tiny_text_models["enc"], tiny_text_models["text"]
    common = ("--data", text, "--max-length", "12", *FAST)
    code, o, err = run(capsys, "export", "-m", enc, "--out", str(tmp_path / "e.onnx"), *common)
    assert code == 0, err
    rec = json.loads(o)
    assert rec["fused"]["Attention"] == 2 and rec["check"]["cosine"] > 0.99999
    code, o, err = run(capsys, "export", "-m", enc, "--out", str(tmp_path / "i8.onnx"),
                       "--form", "int8-dynamic", *common)
    rec = json.loads(o)
    assert code == 0 and 0.95 < rec["check"]["cosine"] < 1.0
    assert "QAttention" in {n.op_type for n in onnx.load(tmp_path / "i8.onnx").graph.node}
    code, o, err = run(capsys, "export", "-m", enc, "--out", str(tmp_path / "i8b.onnx"),
                       "--form", "int8-dynamic", "--max-drop-pp", "0", *common)
    assert code == 0, err
    i8 = json.loads(o)["int8"]  # a budget tighter than all-int8 keeps some layers float
    assert set(i8["alphas"]) == {"None", "0.5", "0.7", "0.85", "1.0"}  # smoothing chosen
    assert i8["kept_float"] and i8["val_score"] >= i8["val_score_fp32"] - 1e-4
    assert json.loads(o)["check"]["cosine"] > rec["check"]["cosine"]
    # the same graph as a .netpress file: int8 tables entropy-coded, run by netpress.runtime
    code, o, err = run(capsys, "export", "-m", enc, "--out", str(tmp_path / "i8.netpress"),
                       "--form", "int8-dynamic", *common)
    assert code == 0, err
    art = json.loads(o)
    assert art["container"] == "netpress" and art["file_bytes"] < rec["file_bytes"]
    assert art["check"]["cosine"] == pytest.approx(rec["check"]["cosine"], abs=2e-3)
    code, o, err = run(capsys, "run", str(tmp_path / "i8.netpress"), "--json")
    assert code == 0, err

    # the packed weight-only file `netpress quantize` writes exports as MatMulNBits (auto)
    code, o, err = run(capsys, "quantize", "--model", enc, "--scheme", "w4-rtn", "--group-size",
                       "16", "--backend", "torch", "--rounds", "1", "--out", str(tmp_path / "q"),
                       "--data", text, "--max-length", "12", "--json")
    assert code == 0, err
    code, o, err = run(capsys, "export", "-m", enc, "-w", str(tmp_path / "q" / "model.safetensors"),
                       "--out", str(tmp_path / "w4.onnx"), *common)
    assert code == 0, err
    rec = json.loads(o)
    assert rec["form"] == "nbits" and rec["check"]["max_rel_error"] < 1e-4
    assert rec["fused"]["MultiHeadAttention"] == 2
    ops = {n.op_type for n in onnx.load(tmp_path / "w4.onnx").graph.node}
    assert "MatMulNBits" in ops and "MatMul" not in ops
    # as a .netpress file: held to the float tolerance in exact mode, fast mode reported
    code, o, err = run(capsys, "export", "-m", enc, "-w", str(tmp_path / "q" / "model.safetensors"),
                       "--out", str(tmp_path / "w4.netpress"), *common)
    assert code == 0, err
    art = json.loads(o)["check"]
    assert art["mode"] == "exact" and art["max_rel_error"] < 1e-3
    assert 0.9 < art["fast"]["cosine"] <= 1.0


def test_bad_form_and_batch_sizes_fail_on_one_line(capsys, weights, tmp_path):
    base = ("export", "-m", "lenet-300-100", "-w", weights, "-d", "digits", "--out",
            str(tmp_path / "x.onnx"))
    code, _, err = run(capsys, *base, "--form", "nbits")
    assert code == 2 and "weight-only" in err and "Traceback" not in err
    code, _, err = run(capsys, *base, "--form", "int4")
    assert code == 2 and "unknown form" in err
    code, _, err = run(capsys, *base, "--max-drop-pp", "0.5")
    assert code == 2 and "--form int8-dynamic" in err
    code, _, err = run(capsys, *base, "--batch-sizes", "1,zero")
    assert code == 2 and "--batch-sizes" in err
    assert not (tmp_path / "x.onnx").exists()


def test_passive_openmp_is_named_in_the_warnings(capsys, weights, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    code, o, err = run(capsys, "export", "-m", "lenet-300-100", "-w", weights, "-d", "digits",
                       "--out", str(tmp_path / "m.onnx"), *FAST)
    rec = json.loads(o)
    assert code == 0 and rec["omp_wait_policy"] == "PASSIVE"
    assert any("OMP_WAIT_POLICY=PASSIVE" in w for w in rec["warnings"])


def test_a_failed_check_leaves_no_file(capsys, weights, tmp_path, monkeypatch):
    import netpress.export.deploy as deploy

    monkeypatch.setattr(deploy, "FLOAT_REL_TOL", -1.0)  # no graph can pass
    out = tmp_path / "m.onnx"
    code, _, err = run(capsys, "export", "-m", "lenet-300-100", "-w", weights, "-d", "digits",
                       "--out", str(out), *FAST)
    assert code == 2 and "differs from the torch model" in err
    assert list(tmp_path.iterdir()) == []


def test_a_language_model_exports_within_tolerance(capsys, make_tiny_hf, tiny_text_models, tmp_path):
    code, o, err = run(capsys, "export", "-m", make_tiny_hf("lm"), "--data", tiny_text_models["text"],
                       "--max-length", "12", "--out", str(tmp_path / "lm.onnx"), *FAST)
    assert code == 0, err
    rec = json.loads(o)
    assert rec["check"]["max_rel_error"] < 1e-4 and rec["check"]["next_token_agreement"] > 0.99
    assert "gpt2" in rec["fuse_note"]

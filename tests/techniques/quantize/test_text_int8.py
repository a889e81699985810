"""``quantize_and_measure`` on a tiny random BERT sentence encoder (dict inputs): dynamic
and static int8, every deployed form scored by the task (cosine to the fp32 reference),
the out folder written. (The tiny classifier's export is tested in tests/export.)"""

import importlib.util
import json
import math

import pytest

from netpress.errors import ModelError

OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def encoder(tiny_text_models):
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    model = build_model(tiny_text_models["enc"])
    task = load_task(tiny_text_models["enc"], tiny_text_models["text"], model,
                     text=TextOptions(max_length=12))
    return model, task


def _check(rec: dict, out_dir, names: set[str]) -> dict:
    forms = {f["name"]: f for f in rec["forms"]}
    assert names <= set(forms), sorted(forms)
    assert rec["score_name"] == "cosine" and rec["forms"][0]["name"] == "torch-fp32"
    for f in rec["forms"]:
        assert math.isfinite(f["accuracy"]) and math.isfinite(f["val_accuracy"])
        assert 0.9 < f["accuracy"] <= 1.0 + 1e-6, f  # cosine to the fp32 reference
        assert f["latency_ms"]["batch1_p50"] > 0
    assert rec["chosen_form"] in forms
    files = sorted(p.name for p in out_dir.iterdir())
    assert "record.json" in files and ("model.onnx" in files or "model.safetensors" in files)
    assert json.loads((out_dir / "record.json").read_text())["chosen_form"] == rec["chosen_form"]
    return forms


def test_int8_dynamic_on_a_sentence_encoder(encoder, tmp_path):
    from netpress.techniques.quantize.run import quantize_and_measure

    model, task = encoder
    rec = quantize_and_measure(model, task, "tiny-bert", "int8-dynamic", out=tmp_path / "q",
                               backend="auto", rounds=1)
    forms = _check(rec, tmp_path / "q", {"torch-int8-dynamic", "onnxruntime-fp32",
                                         "onnxruntime-int8-dynamic"})
    assert forms["onnxruntime-fp32"]["accuracy"] > 1 - 1e-5  # same graph, float
    for name in ("torch-int8-dynamic", "onnxruntime-int8-dynamic"):
        assert forms[name]["accuracy"] < 1 - 1e-6  # really quantized
    # ORT's dynamic quantizer also stores the embedding tables in 8 bits
    assert forms["onnxruntime-int8-dynamic"]["size_bytes"] < 0.4 * rec["baseline_size_bytes"]


def test_int8_static_on_a_sentence_encoder_skips_fx_with_a_warning(encoder, tmp_path):
    from netpress.techniques.quantize.run import quantize_and_measure

    model, task = encoder
    rec = quantize_and_measure(model, task, "tiny-bert", "int8-static", out=tmp_path / "q",
                               backend="auto", rounds=1)
    want = {"onnxruntime-int8-static"} | ({"openvino-int8-static"} if OPENVINO else set())
    forms = _check(rec, tmp_path / "q", want)
    assert "torch-int8-static" not in forms
    assert any(w.startswith("torch-int8-static skipped: torch FX cannot trace SentenceEncoder")
               for w in rec["warnings"])
    assert forms["onnxruntime-int8-static"]["accuracy"] < 1 - 1e-6
    assert rec["observer"] == "minmax"


def test_fx_static_int8_refuses_a_transformer_with_a_model_error(encoder):
    from netpress.techniques.quantize.ptq import fx_static_int8

    model, task = encoder
    with pytest.raises(ModelError, match="FX cannot trace SentenceEncoder"):
        fx_static_int8(model, [task.example_inputs(2, "calib")])

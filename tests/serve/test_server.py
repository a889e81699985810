"""The real server (uvicorn on 127.0.0.1, a free port) with real HTTP requests."""

import json

import numpy as np
import pytest

from netpress.runtime import load
from netpress.serve.app import build_app
from netpress.serve.config import ServeConfig
from netpress.serve.server import serving

from .http import get, metric, post, post_large


@pytest.fixture(scope="module")
def server(served):
    cfg = ServeConfig(max_body_bytes=256 << 10, max_examples=64, shadow_rate=0.0)
    app = build_app([("fp32", str(served["model"])), ("int8", str(served["int8"]))], cfg,
                    reference=str(served["reference"]))
    with serving(app) as url:
        yield url


def test_predict_gives_the_runtime_outputs(server, served):
    x = served["x"][:5]
    status, ans = post(server + "/v1/predict", {"inputs": x.tolist()})
    assert status == 200, ans
    assert ans["variant"] == "fp32" and ans["version"].startswith("sha256:")
    want = load(served["model"]).run(x)
    np.testing.assert_allclose(np.array(ans["outputs"]), want, rtol=1e-5, atol=1e-5)
    assert 5 <= ans["batch_size"] <= 32


@pytest.mark.parametrize("body,status,words", [
    (b"{not json", 400, "not valid JSON"),
    (b'{"outputs": []}', 422, '"inputs"'),
    ({"inputs": [[1.0, 2.0]]}, 422, "shape"),
    ({"inputs": np.zeros((1, 1, 28, 27)).tolist()}, 422, "(batch, 1, 28, 28)"),
    ({"inputs": np.zeros((1, 28, 28)).tolist()}, 422, "one more []"),
    ({"inputs": [[["a"] * 28] * 28]}, 422, "non-numbers"),
    ({"inputs": np.zeros((1, 1, 28, 28)).tolist(), "dtype": "int64"}, 422, "takes float32"),
    ({"inputs": np.zeros((1, 1, 28, 28)).tolist(), "extra": 1}, 422, "unknown fields"),
    ({"inputs": np.zeros((65, 1, 28, 28)).tolist()}, 413, "split the request"),
    ({"inputs": np.zeros((1, 1, 28, 28)).tolist(), "latency_budget_ms": -1}, 422, "positive"),
    ({"inputs": np.zeros((1, 1, 28, 28)).tolist(), "variant": "fp16"}, 422, "no variant"),
])
def test_bad_requests_get_4xx_with_a_message_and_the_server_stays_up(server, body, status, words):
    got, ans = post(server + "/v1/predict", body)
    assert got == status and words in ans["error"], ans
    assert get(server + "/healthz")[0] == 200
    assert post(server + "/v1/predict", {"inputs": np.zeros((1, 1, 28, 28)).tolist()})[0] == 200


def test_oversized_body_is_413(server):
    big = json.dumps({"inputs": np.zeros((60, 1, 28, 28)).tolist()}).encode() + b" " * (300 << 10)
    status, ans = post_large(server + "/v1/predict", big)
    assert status == 413 and "limit" in ans["error"]
    assert get(server + "/readyz")[0] == 200


def test_health_readiness_and_metrics(server, served):
    assert json.loads(get(server + "/readyz")[1])["variants"] == ["fp32", "int8"]
    for i in range(0, 40, 4):
        assert post(server + "/v1/predict", {"inputs": served["x"][i:i + 4].tolist()})[0] == 200
    post(server + "/v1/predict", b"[")
    text = get(server + "/metrics")[1].decode()
    assert metric(text, "netpress_requests_total", variant="fp32", status="200") >= 10
    assert metric(text, "netpress_request_errors_total", reason="bad_json") >= 1
    assert metric(text, "netpress_request_latency_seconds_count", variant="fp32") >= 10
    assert metric(text, "netpress_batch_size_sum", variant="fp32") >= 40
    assert metric(text, "netpress_model_version", variant="int8",
                  version=json.loads(get(server + "/v1/status")[1])["variants"][1]["version"]) == 1


def test_latency_budget_picks_the_variant(server, served):
    x = served["x"][:1].tolist()
    assert post(server + "/v1/predict", {"inputs": x, "latency_budget_ms": 1000})[1]["variant"] == "fp32"
    assert post(server + "/v1/predict", {"inputs": x, "latency_budget_ms": 0.001})[1]["variant"] \
        in ("fp32", "int8")  # nothing fits: the fastest by measured time
    assert post(server + "/v1/predict", {"inputs": x, "variant": "int8"})[1]["variant"] == "int8"
    status, ans = post(server + "/v1/predict", {"inputs": x}, {"X-Latency-Budget-Ms": "fast"})
    assert status == 422 and "X-Latency-Budget-Ms" in ans["error"]


def test_serving_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, netpress.serve.app, netpress.serve.__main__, netpress.registry;"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Drift and shadow metrics move on shifted inputs and stay still on in-distribution ones."""

import json

import numpy as np
import pytest

from netpress.serve.app import build_app
from netpress.serve.config import ServeConfig
from netpress.serve.server import serving

from .http import get, metric, post

CFG = ServeConfig(shadow_rate=1.0, shadow_window=150, shadow_min=50, drift_window=150,
                  drift_min=100, drift_every=50, psi_alert=0.25, ks_alert=0.3, min_agreement=0.8)


def _feed(url, x):
    for i in range(0, len(x), 10):
        assert post(url + "/v1/predict", {"inputs": x[i:i + 10].tolist()})[0] == 200


def _status(url):
    return json.loads(get(url + "/v1/status")[1])


@pytest.fixture
def url(served):
    app = build_app([("main", str(served["model"]))], CFG, baseline=str(served["baseline"]),
                    reference=str(served["reference"]))
    with serving(app) as u:
        yield u


def test_in_distribution_traffic_raises_nothing(url, served):
    x = served["x"]
    _feed(url, x[:150])
    first = _status(url)
    _feed(url, x[150:300])
    second = _status(url)
    for s in (first, second):
        assert s["alerts"] == {}, s
        assert s["drift"]["input_psi_max"] < CFG.psi_alert
        assert s["drift"]["input_ks_max"] < CFG.ks_alert
        assert s["shadow"]["agreement"] >= CFG.min_agreement
    # two in-distribution windows: the statistics stay where they were
    assert abs(first["shadow"]["agreement"] - second["shadow"]["agreement"]) < 0.08
    assert abs(first["drift"]["input_psi_mean"] - second["drift"]["input_psi_mean"]) < 0.05
    text = get(url + "/metrics")[1].decode()
    assert metric(text, "netpress_alert", kind="input_drift") == 0
    assert metric(text, "netpress_shadow_examples_total") == 300


def test_noise_moves_input_drift_and_shadow_metrics(url, served):
    x = served["x"][:150]
    _feed(url, x)
    clean = _status(url)
    noisy = x + np.random.default_rng(0).normal(0, 3.0, x.shape).astype(np.float32)
    _feed(url, noisy)
    shifted = _status(url)
    assert shifted["drift"]["input_psi_max"] > 4 * clean["drift"]["input_psi_max"]
    assert shifted["drift"]["input_ks_max"] > CFG.ks_alert
    assert shifted["shadow"]["agreement"] < clean["shadow"]["agreement"] - 0.05
    assert shifted["shadow"]["kl"] > 1.5 * clean["shadow"]["kl"]
    assert "input_drift" in shifted["alerts"]
    text = get(url + "/metrics")[1].decode()
    assert metric(text, "netpress_alert", kind="input_drift") == 1
    assert metric(text, "netpress_drift_psi", side="input", stat="max") == pytest.approx(
        shifted["drift"]["input_psi_max"])
    assert metric(text, "netpress_shadow_agreement") == pytest.approx(shifted["shadow"]["agreement"])


def test_a_different_class_mix_moves_output_drift(url, served):
    x, y = served["x"], served["y"]
    few = x[np.isin(y, (0, 1))]
    _feed(url, np.concatenate([few] * (150 // len(few) + 1))[:150])
    s = _status(url)
    assert s["drift"]["class_mix_psi"] > 1.0
    assert "output_drift" in s["alerts"]

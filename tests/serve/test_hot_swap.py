"""A new champion is hot-swapped under concurrent requests without dropping one."""

import concurrent.futures
import json
import threading

import numpy as np

from netpress.runtime import load
from netpress.serve.app import build_app
from netpress.serve.config import ServeConfig
from netpress.serve.server import serving

from .http import get, metric, post


def test_hot_swap_under_load_drops_nothing(served):
    app = build_app([("main", str(served["model"]))], ServeConfig(shadow_rate=0.0))
    x = served["x"][:2]
    old, new = load(served["model"]).run(x), load(served["v2"]).run(x)
    assert not np.allclose(old, new)
    with serving(app) as url:
        stop = threading.Event()
        answers: list = []

        def client():
            while not stop.is_set() or len(answers) < 50:
                answers.append(post(url + "/v1/predict", {"inputs": x.tolist()}))
                if len(answers) > 2000:
                    break

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(client) for _ in range(4)]
            while len(answers) < 40:
                threading.Event().wait(0.01)
            status, swap = post(url + "/admin/reload", {"variant": "main",
                                                        "source": str(served["v2"])})
            n_at_swap = len(answers)
            while len(answers) < n_at_swap + 40:
                threading.Event().wait(0.01)
            stop.set()
            for f in futs:
                f.result()
        assert status == 200 and swap["swapped"][0]["to"].startswith("sha256:"), swap
        assert all(s == 200 for s, _ in answers), [a for a in answers if a[0] != 200][:3]
        versions = [a["version"] for _, a in answers]
        assert versions[0] != versions[-1]
        for _, a in answers:  # every answer is exactly one version's output, never a mix
            out = np.array(a["outputs"])
            assert np.allclose(out, old, atol=1e-5) or np.allclose(out, new, atol=1e-5)
        np.testing.assert_allclose(np.array(answers[-1][1]["outputs"]), new, atol=1e-5)
        text = get(url + "/metrics")[1].decode()
        assert metric(text, "netpress_swaps_total", variant="main") == 1
        assert metric(text, "netpress_model_version", variant="main",
                      version=swap["swapped"][0]["to"]) == 1
        assert json.loads(get(url + "/v1/status")[1])["variants"][0]["version"] == \
            swap["swapped"][0]["to"]
        bad = post(url + "/admin/reload", {"variant": "main", "source": "missing.netpress"})
        assert bad[0] == 422 and "no such artifact" in bad[1]["error"]

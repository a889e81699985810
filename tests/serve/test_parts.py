"""The server's parts alone: drift statistics, request checks, settings, ladder choice."""

import numpy as np
import pytest

from netpress.errors import ConfigError, FormatError
from netpress.serve.config import ServeConfig
from netpress.serve.drift import DriftMonitor, build_reference, check_reference, psi
from netpress.serve.ladder import Ladder, Variant
from netpress.serve.payload import BadRequest, parse
from netpress.serve.shadow import Shadow, kl_rows
from netpress.serve.sources import parse_variants, resolve


def test_psi_and_ks_are_zero_on_the_reference_and_large_on_a_shift():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 4))
    ref = build_reference(x, y)
    mon = DriftMonitor(ref, window=3000, min_examples=10)
    mon.add(x, y)
    s = mon.stats()
    assert s["input_psi_max"] < 1e-3 and s["input_ks_max"] < 0.02 and s["class_mix_psi"] < 1e-3
    mon2 = DriftMonitor(ref, window=1000, min_examples=10)
    mon2.add(x[:1000] + 1.0, y[:1000])
    s2 = mon2.stats()
    assert s2["input_psi_max"] > 0.5 and s2["input_ks_max"] > 0.3 and s2["output_psi_max"] < 0.1
    assert psi(np.array([0.1, 0.9]), np.array([0.5, 0.5])) == pytest.approx(
        0.4 * np.log(0.5 / 0.1) + 0.4 * np.log(0.9 / 0.5))


def test_drift_waits_for_enough_examples_and_refuses_bad_references():
    ref = build_reference(np.random.rand(100, 3), np.random.rand(100, 2))
    mon = DriftMonitor(ref, min_examples=50)
    mon.add(np.random.rand(10, 3), np.random.rand(10, 2))
    assert mon.stats()["input_psi_max"] is None
    with pytest.raises(FormatError, match="reference.json"):
        check_reference({"version": 99})


def test_shadow_agreement_kl_and_cosine():
    s = Shadow(None, rate=1.0)
    s.compare(np.array([[3.0, 0.0], [0.0, 3.0]]), np.array([[2.0, 0.0], [3.0, 0.0]]))
    st = s.stats()
    assert st["agreement"] == 0.5 and st["kl"] == pytest.approx(kl_rows(
        np.array([[3.0, 0.0], [0.0, 3.0]]), np.array([[2.0, 0.0], [3.0, 0.0]])).mean())
    e = Shadow(None, rate=1.0)
    e.compare(np.ones((2, 1, 4)), 2 * np.ones((2, 1, 4)))  # embeddings: cosine
    assert e.stats()["agreement"] == pytest.approx(1.0) and e.stats()["kl"] is None


def test_payload_checks_dicts_integers_and_counts():
    spec = {"ids": {"shape": ["b", "t"], "dtype": "int64"},
            "mask": {"shape": ["b", "t"], "dtype": "int64"}}
    r = parse(b'{"inputs": {"ids": [[1, 2]], "mask": [[1, 1]]}}', spec, 1 << 20, 4)
    assert r.feeds["ids"].dtype == np.int64 and r.n == 1
    for body, words in ((b'{"inputs": {"ids": [[1.5, 2]], "mask": [[1, 1]]}}', "fractional"),
                        (b'{"inputs": {"ids": [[1, 2]]}}', "missing ['mask']"),
                        (b'{"inputs": [[1, 2]]}', "as an object"),
                        (b'{"inputs": {"ids": [[1, 2], [3]], "mask": [[1, 1]]}}', "rectangular"),
                        (b'{"inputs": {"ids": [[1, 2]], "mask": [[1, 1], [1, 1]]}}', "different")):
        with pytest.raises(BadRequest, match=words.replace("[", r"\[").replace("]", r"\]")):
            parse(body, spec, 1 << 20, 4)
    with pytest.raises(BadRequest) as e:
        parse(b"x" * 100, spec, 50, 4)
    assert e.value.status == 413


def test_config_names_the_bad_key():
    with pytest.raises(ConfigError, match="unknown serve config keys \\['batch'\\]"):
        ServeConfig.from_dict({"batch": 3})
    with pytest.raises(ConfigError, match="shadow_rate"):
        ServeConfig(shadow_rate=2.0)
    with pytest.raises(ConfigError, match="whole number"):
        ServeConfig.from_dict({"max_batch": 2.5})


def test_ladder_steps_down_with_queue_depth_and_budget(served):
    fp32 = Variant.load("fp32", resolve(str(served["model"])))
    int8 = Variant.load("int8", resolve(str(served["int8"])))
    ladder = Ladder([fp32, int8], queue_step=8)
    assert ladder.pick().name == "fp32"
    fp32.batcher.depth = 20  # a queue on the best rung sends traffic down
    assert ladder.pick().name == "int8"
    fp32.batcher.depth = 0
    fp32.batcher.batch_ms, int8.batcher.batch_ms = 5.0, 0.5
    fp32.batcher.max_wait = int8.batcher.max_wait = 0.0
    assert ladder.pick(budget_ms=100).name == "fp32"
    assert ladder.pick(budget_ms=2).name == "int8"
    with pytest.raises(ConfigError, match="differ"):
        Ladder([fp32, fp32])


def test_variant_list_parsing():
    assert parse_variants(None, ["a=x", "b=y"]) == [("a", "x"), ("b", "y")]
    with pytest.raises(ConfigError, match="NAME=SOURCE"):
        parse_variants("m", ["int8"])

from netpress.profile import measure
from netpress.zoo import build_model

SHARED = ["model", "params", "nonzero_params", "macs", "accuracy", "baseline_accuracy",
          "accuracy_drop_pp", "size_bytes", "baseline_size_bytes", "compression_ratio",
          "latency_ms", "baseline_latency_ms", "threads", "peak_rss_mb", "layers",
          "netpress_version"]


def test_record_has_every_shared_key(digits):
    m = build_model("lenet5-caffe")
    rec = measure(m, digits, "lenet5-caffe", baseline=build_model("lenet5-caffe"), rounds=1)
    assert all(k in rec for k in SHARED)
    assert rec["macs"] == 2_293_000 and rec["params"] == 431_080
    # size is a real safetensors file: 4 bytes per float plus a small header
    assert 431_080 * 4 < rec["size_bytes"] < 431_080 * 4 + 2000
    lat = rec["latency_ms"]
    assert lat["batch_n"] == 256 and 0 < lat["batch1_p50"] <= lat["batch1_p95"]
    assert 0 < sum(r["latency_share"] for r in rec["layers"]) <= 1.0
    assert rec["threads"] == 2 and rec["peak_rss_mb"] > 0

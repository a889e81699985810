import json

import pytest

from netpress.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from netpress import api
    from netpress.data import load_split

    p = tmp_path_factory.mktemp("w") / "mlp.safetensors"
    api.train("lenet-300-100", load_split("digits"), epochs=1, seed=0, out=p)
    return str(p)


def test_prune_magnitude_json_record(capsys, weights, tmp_path):
    out = tmp_path / "p.safetensors"
    sparse = tmp_path / "p.sparse.safetensors"
    code, stdout, err = run(capsys, "prune", "--model", "lenet-300-100", "--weights", weights,
                            "--data", "digits", "--method", "magnitude", "--sparsity", "0.9",
                            "-e", "0", "--out", str(out), "--sparse-out", str(sparse), "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    assert rec["weight_sparsity"] == pytest.approx(0.9, abs=1e-5)
    assert rec["dense_size_bytes"] == out.stat().st_size
    assert rec["sparse_size_bytes"] == sparse.stat().st_size < rec["dense_size_bytes"] / 5
    assert rec["size_bytes"] == rec["sparse_size_bytes"]
    for k in ("accuracy", "baseline_accuracy", "latency_ms", "baseline_latency_ms", "threads"):
        assert k in rec
    assert rec["nonzero_params"] < 0.12 * rec["params"]
    # the pruned dense file loads back like any weights file
    code, stdout, _ = run(capsys, "eval", "--model", "lenet-300-100", "--weights", str(out),
                          "--data", "digits", "--json")
    assert code == 0 and json.loads(stdout)["accuracy"] == pytest.approx(rec["accuracy"])


def test_prune_structured_then_profile(capsys, weights, tmp_path):
    out = tmp_path / "s.safetensors"
    code, stdout, err = run(capsys, "prune", "--model", "lenet-300-100", "--weights", weights,
                            "--data", "digits", "--method", "structured", "--sparsity", "0.5",
                            "-e", "1", "--self-distill", "0.5", "--out", str(out), "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    assert rec["config"]["self_distill"] == 0.5 and rec["config"]["finetune_epochs"] == 1
    assert rec["channels"] == {"1": 150, "3": 50, "5": 10}
    assert rec["params"] < rec["layers"][0]["params"] * 2
    code, stdout, _ = run(capsys, "profile", "--model", "lenet-300-100", "--weights", str(out),
                          "--data", "digits", "--json")
    assert code == 0 and json.loads(stdout)["params"] == rec["params"]


def test_prune_nm_table(capsys, weights, tmp_path):
    code, stdout, err = run(capsys, "prune", "--model", "lenet-300-100", "--weights", weights,
                            "--data", "digits", "--method", "nm", "--n", "2", "--m", "4",
                            "-e", "1", "--out", str(tmp_path / "nm.safetensors"))
    assert code == 0, err
    assert "N:M groups violating the pattern" in stdout and "weights removed" in stdout


def test_sensitivity_json_plot_ratios(capsys, weights, tmp_path):
    png = tmp_path / "s.png"
    code, stdout, err = run(capsys, "sensitivity", "--model", "lenet-300-100", "--weights",
                            weights, "--data", "digits", "--sparsities", "0,0.5,0.9,0.97",
                            "--target", "0.9", "--plot", str(png), "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    assert set(rec["accuracy"]) == {"1", "3", "5"} and len(rec["accuracy"]["1"]) == 4
    sizes = rec["sizes"]
    overall = sum(rec["ratios"][k] * sizes[k] for k in sizes) / sum(sizes.values())
    assert overall == pytest.approx(0.9)
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, msg", [
    (["--method", "agp"], "needs --sparsity"),
    (["--method", "bogus", "--sparsity", "0.5"], "unknown --method"),
    (["--method", "magnitude", "--sparsity", "1.5"], "sparsity must be between 0 and 1"),
    (["--method", "magnitude", "--sparsity", "0.5", "--override", "fc1"], "NAME=FRACTION"),
])
def test_prune_errors_are_one_line(capsys, weights, tmp_path, args, msg):
    code, _, err = run(capsys, "prune", "--model", "lenet-300-100", "--weights", weights,
                       "--data", "digits", "--out", str(tmp_path / "x.safetensors"), *args)
    assert code == 2 and msg in err and "Traceback" not in err

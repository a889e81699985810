import json

import pytest

from netpress import api
from netpress.cli import main
from netpress.profile import count_params


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def mlp_weights(tmp_path_factory, digits):
    p = tmp_path_factory.mktemp("w") / "mlp.safetensors"
    api.train("lenet-300-100", digits, epochs=2, seed=0, out=p)
    return str(p)


def test_lowrank_cli_writes_a_reloadable_model(capsys, tmp_path, mlp_weights):
    out = tmp_path / "lr.safetensors"
    code, stdout, err = run(capsys, "lowrank", "--model", "lenet-300-100", "--weights",
                            mlp_weights, "--data", "digits", "--params-ratio", "0.3",
                            "--finetune-epochs", "1", "--lr", "1e-3", "--out", str(out), "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    assert rec["params"] <= 0.3 * 266_610 and rec["plan"]["1"]["kind"] == "svd"
    assert rec["size_bytes"] == out.stat().st_size < rec["baseline_size_bytes"]
    assert rec["latency_ms"]["batch_n"] == 256 and "baseline_latency_ms" in rec
    # the ordinary eval command reloads the factorized architecture from the file
    code, stdout, _ = run(capsys, "eval", "--model", "lenet-300-100", "--weights", str(out),
                          "--data", "digits", "--json")
    assert code == 0 and json.loads(stdout)["accuracy"] == pytest.approx(rec["accuracy"])
    assert count_params(api.load_model("lenet-300-100", out)) == rec["params"]


def test_distill_cli(capsys, tmp_path, mlp_weights):
    out = tmp_path / "student.safetensors"
    code, stdout, err = run(capsys, "distill", "--teacher", "lenet-300-100", "--teacher-weights",
                            mlp_weights, "--width", "0.25", "--data", "digits", "--epochs", "1",
                            "--out", str(out), "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    assert rec["params"] == 784 * 75 + 75 + 75 * 25 + 25 + 25 * 10 + 10
    assert rec["teacher"] == "lenet-300-100" and 0 <= rec["accuracy"] <= 1
    assert count_params(api.load_model("lenet-300-100", out)) == rec["params"]


@pytest.mark.parametrize("args, msg", [
    (["--energy", "0.9", "--params-ratio", "0.3"], "exactly one of"),
    (["--energy", "1.5"], "energy must be in"),
    (["--energy", "0.9", "--conv", "svd"], "--conv must be"),
])
def test_lowrank_cli_errors(capsys, tmp_path, mlp_weights, args, msg):
    code, _, err = run(capsys, "lowrank", "--model", "lenet-300-100", "--weights", mlp_weights,
                       "--data", "digits", "--out", str(tmp_path / "x.safetensors"), *args)
    assert code == 2 and msg in err and "Traceback" not in err

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from netpress.cli import main
from netpress.io import save_weights


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from netpress import api
    from netpress.data import load_split

    p = tmp_path_factory.mktemp("w") / "lenet5.safetensors"
    api.train("lenet5", load_split("digits"), epochs=1, seed=0, out=p)
    return str(p)


def test_train_json(capsys, tmp_path):
    out_path = tmp_path / "m.safetensors"
    code, out, _ = run(capsys, "train", "--model", "lenet5", "--data", "digits", "--epochs", "1",
                       "--out", str(out_path), "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["epochs"] == 1 and os.path.isfile(out_path) and 0 < rec["accuracy"] <= 1


def test_profile_json_record(capsys, weights):
    code, out, _ = run(capsys, "profile", "--model", "lenet5", "--weights", weights,
                       "--data", "digits", "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["params"] == 61_706 and rec["compression_ratio"] == 1.0
    assert rec["latency_ms"]["batch_n"] == 256


def test_eval_with_reference(capsys, weights):
    code, out, _ = run(capsys, "eval", "--model", "lenet5", "--weights", weights,
                       "--data", "digits", "--reference", weights, "--json")
    rec = json.loads(out)
    assert code == 0 and rec["agreement"] == 1.0 and abs(rec["mean_kl"]) < 1e-6
    assert len(rec["per_class_accuracy"]) == 10


def test_tables_for_people(capsys, weights):
    code, out, _ = run(capsys, "profile", "--model", "lenet5", "--weights", weights,
                       "--data", "digits")
    assert code == 0 and "latency batch 256 p50" in out and "MACs" in out


@pytest.mark.parametrize("args, msg", [
    (["profile", "--model", "alexnet", "--data", "digits"], "unknown model 'alexnet'"),
    (["eval", "--model", "lenet5", "--weights", "/nonexistent.safetensors", "--data", "digits"],
     "weights file not found"),
    (["eval", "--model", "lenet5", "--data", "digits"], "--weights is required"),
    (["profile", "--model", "lenet5", "--data", "cifar"], "unknown data set"),
    (["profile", "--model", "lenet5", "--data", "fashion-mnist", "--data-dir", "/nonexistent"],
     "does not exist"),
])
def test_errors_are_one_line(capsys, args, msg):
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and msg in lines[0]
    assert "Traceback" not in err


def test_pickle_and_wrong_shape(capsys, tmp_path):
    pkl = tmp_path / "m.pt"
    torch.save({"w": torch.zeros(2)}, pkl)
    code, _, err = run(capsys, "eval", "--model", "lenet5", "--weights", str(pkl), "--data", "digits")
    assert code == 2 and "pickle" in err and "Traceback" not in err
    wrong = save_weights(nn.Linear(2, 2), tmp_path / "wrong.safetensors")
    code, _, err = run(capsys, "eval", "--model", "lenet5", "--weights", str(wrong),
                       "--data", "digits")
    assert code == 2 and "do not fit the model" in err


def test_debug_shows_traceback():
    r = subprocess.run([sys.executable, "-m", "netpress", "profile", "--model", "alexnet",
                        "--data", "digits", "--debug"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" in r.stderr
    r = subprocess.run([sys.executable, "-m", "netpress", "profile", "--model", "alexnet",
                        "--data", "digits"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_usage_error_exit_code(capsys):
    code, _, _ = run(capsys, "profile")
    assert code == 2

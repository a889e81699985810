import json
import os

import pytest

from netpress.cli import main
from netpress.io import load_weights

RECIPE = """\
name: tiny
stages:
  - _type: MagnitudePrune
    sparsity: 0.85
  - _type: WeightShare
    bits: 3
    bias_bits: 4
"""


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    from netpress import api
    from netpress.data import load_split

    d = tmp_path_factory.mktemp("deepc")
    w = d / "base.safetensors"
    api.train("lenet-300-100", load_split("digits"), epochs=2, seed=0, out=w, threads=1)
    (d / "tiny.yaml").write_text(RECIPE)
    return d, w


def test_compress_inspect_unpack_eval(capsys, compressed):
    d, w = compressed
    art = d / "m.netpress"
    code, out, err = run(capsys, "compress", "--model", "lenet-300-100", "--weights", str(w),
                         "--data", "digits", "--recipe", str(d / "tiny.yaml"), "--out", str(art),
                         "--threads", "1", "--json")
    assert code == 0, err
    rec = json.loads(out)
    size = os.path.getsize(art)
    assert rec["size_bytes"] == size and rec["baseline_size_bytes"] == 4 * 266_610
    assert rec["compression_ratio"] == pytest.approx(4 * 266_610 / size)
    assert rec["load_equals_compressed"] is True
    assert [s["technique"] for s in rec["stages"]] == ["MagnitudePrune", "WeightShare"]
    layers = {r["name"]: r for r in rec["artifact_layers"]}
    assert layers["1.weight"]["codebook_size"] <= 8 and layers["1.bias"]["encoding"] == "shared"
    assert rec["nonzero_params"] < 0.2 * rec["params"]

    code, out, _ = run(capsys, "inspect", str(art), "--json")
    info = json.loads(out)
    assert code == 0 and info["file_bytes"] == size and info["recipe"]["name"] == "tiny"
    assert all(s["overhead"] is None or s["overhead"] > -1e-9 for s in info["streams"])
    code, out, _ = run(capsys, "inspect", str(art))
    assert code == 0 and "bits P+Q+H" in out and "overhead" in out

    code, out, _ = run(capsys, "eval", str(art), "--data", "digits", "--json")
    acc = json.loads(out)["accuracy"]
    assert code == 0 and acc == pytest.approx(rec["accuracy"])

    plain = d / "unpacked.safetensors"
    code, out, _ = run(capsys, "unpack", str(art), "--out", str(plain), "--json")
    assert code == 0 and json.loads(out)["tensors"] == 6
    assert (load_weights(plain)["1.weight"] == 0).float().mean() > 0.8
    code, out, _ = run(capsys, "eval", "--model", "lenet-300-100", "--weights", str(plain),
                       "--data", "digits", "--json")
    assert json.loads(out)["accuracy"] == acc

    repacked = d / "re.netpress"
    code, out, _ = run(capsys, "pack", "--model", "lenet-300-100", "--weights", str(plain),
                       "--out", str(repacked), "--coder", "huffman", "--json")
    assert code == 0 and json.loads(out)["size_bytes"] == os.path.getsize(repacked)
    code, out, _ = run(capsys, "eval", str(repacked), "--data", "digits", "--json")
    assert json.loads(out)["accuracy"] == acc


def test_bad_artifacts_give_one_line_errors(capsys, tmp_path):
    bad = tmp_path / "bad.netpress"
    bad.write_bytes(b"NETPRESS" + b"\x01\x00\x00\x00" + b"\xff" * 30)
    code, _, err = run(capsys, "inspect", str(bad))
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    code, _, err = run(capsys, "eval", str(tmp_path / "missing.netpress"), "--data", "digits")
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, "eval", "--data", "digits")
    assert code == 2 and "ARTIFACT" in err
    code, _, err = run(capsys, "pack", "--model", "lenet5", "--out", str(tmp_path / "x"))
    assert code == 2 and "--weights" in err

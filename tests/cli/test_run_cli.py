import json

import numpy as np
import torch

from netpress.cli import main
from netpress.encode.artifact import artifact_bytes
from netpress.zoo import build_model


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_gives_the_model_outputs_and_says_what_it_timed(capsys, tmp_path):
    torch.manual_seed(0)
    model = build_model("lenet5-caffe").eval()
    art = tmp_path / "m.netpress"
    art.write_bytes(artifact_bytes(model, "lenet5-caffe"))
    x = torch.randn(3, 1, 28, 28)
    np.save(tmp_path / "x.npy", x.numpy())
    code, out, err = run(capsys, "run", art, "--input", tmp_path / "x.npy", "--out",
                         tmp_path / "y.npy", "--threads", "1", "--repeat", "2", "--json")
    assert code == 0, err
    rec = json.loads(out)
    with torch.no_grad():
        want = model(x).numpy()
    assert rec["output_shape"] == [3, 10] and rec["argmax"] == want.argmax(1).tolist()
    assert rec["inputs"] == {"input": [3, 1, 28, 28]} and rec["run_ms_p50"] > 0
    assert np.allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-6)
    code, out, _ = run(capsys, "run", art)  # a trial input, the table for people
    assert code == 0 and "trial input" in out


def test_run_refuses_bad_inputs_in_one_line(capsys, tmp_path):
    art = tmp_path / "m.netpress"
    art.write_bytes(artifact_bytes(build_model("lenet-300-100"), "lenet-300-100"))
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    code, _, err = run(capsys, "run", art, "--input", tmp_path / "bad.npy")
    assert code == 2 and err.startswith("error: input input has 2 dimensions")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    code, _, err = run(capsys, "run", art, "--input", tmp_path / "junk.npy")
    assert code == 2 and "cannot read --input" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "run", tmp_path / "missing.netpress")
    assert code == 2 and "artifact not found" in err

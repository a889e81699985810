"""``netpress compress --run-dir``: the run folder's files, and resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from netpress.cli import main

RECIPE = """\
name: four
stages:
  - _type: MagnitudePrune
    sparsity: 0.7
  - _type: Finetune
    epochs: 2
    lr: 0.0005
  - _type: MagnitudePrune
    sparsity: 0.85
  - _type: WeightShare
    bits: 4
    finetune_epochs: 1
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from netpress import api
    from netpress.data import load_split

    d = tmp_path_factory.mktemp("run")
    w = d / "base.safetensors"
    api.train("lenet-300-100", load_split("digits"), epochs=2, seed=0, out=w, threads=1)
    (d / "four.yaml").write_text(RECIPE)
    return d, w


def _args(d, w, run_dir):
    return ["compress", "--model", "lenet-300-100", "--weights", str(w), "--data", "digits",
            "--recipe", str(d / "four.yaml"), "--run-dir", str(run_dir), "--threads", "1"]


def test_run_folder_files(capsys, setup):
    d, w = setup
    run_dir = d / "full"
    assert main(_args(d, w, run_dir) + ["--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["run_dir"] == str(run_dir) and rec["size_bytes"] == (run_dir / "model.netpress").stat().st_size
    on_disk = json.loads((run_dir / "record.json").read_text())
    assert on_disk["compression_ratio"] == pytest.approx(rec["compression_ratio"])
    sens = json.loads((run_dir / "sensitivity.json").read_text())
    assert set(sens["layers"]) == {"1", "3", "5"} and sens["sparsities"][0] == 0.0
    assert all(acc[0] == pytest.approx(sens["baseline"]) for acc in sens["layers"].values())
    hist = json.loads((run_dir / "histograms.json").read_text())["layers"]["1"]
    assert sum(hist["before"]) == 300 * 784 and hist["distinct_after"] <= 16
    assert sum(hist["after"]) == round((1 - hist["zeros_after"]) * 300 * 784)
    beh = json.loads((run_dir / "behaviour.json").read_text())
    assert beh["accuracy"] == pytest.approx(rec["accuracy"]) and 0 <= beh["ece"] < 1
    report = json.loads((run_dir / "report.json").read_text())
    assert report["compression_ratio"] == pytest.approx(rec["compression_ratio"])
    assert report["behaviour"]["max_class_drop_pp"] == pytest.approx(beh["max_class_drop_pp"])
    assert (run_dir / "report.html").stat().st_size > 10_000 and (run_dir / "report.md").is_file()
    ratio = rec["compression_ratio"]
    assert main(["gate", str(run_dir / "report.json"), "--min-ratio", f"{ratio * 0.99}"]) == 0
    assert main(["gate", str(run_dir / "report.json"), "--min-ratio", f"{ratio * 1.01}"]) == 1
    capsys.readouterr()
    assert main(_args(d, w, run_dir)) == 2  # the folder holds a run: no silent overwrite
    assert "already holds a run" in capsys.readouterr().err


def test_sigkill_then_resume_gives_the_same_bytes(capsys, setup):
    d, w = setup
    full = (d / "full" / "model.netpress").read_bytes()
    run_dir = d / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "netpress"] + _args(d, w, run_dir), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = run_dir / "checkpoints" / "stage-02.json"
    deadline = time.monotonic() + 120
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists(), "the run did not reach stage 2 before the deadline"
    assert not (run_dir / "model.netpress").exists()
    assert main(_args(d, w, run_dir) + ["--resume", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["resumed_from"] >= 2
    assert (run_dir / "model.netpress").read_bytes() == full

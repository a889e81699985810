"""DDP under torchrun with 2 CPU processes (gloo): the same training as one process, rank 0
alone writes, a killed rank stops the run with a clear error and resume gives the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from netpress.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")
WORKER = str(Path(__file__).with_name("ddp_worker.py"))
RECIPE = """\
name: ddp
stages:
  - _type: MagnitudePrune
    sparsity: 0.5
  - _type: Finetune
    epochs: 1
    lr: 0.001
"""


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1", **extra}


def _run(args: list[str], nproc: int, **env) -> int:
    cmd = [sys.executable, WORKER, *args] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
        "--nproc-per-node", str(nproc), WORKER, *args]
    return subprocess.run(cmd, env=_env(**env), capture_output=True, timeout=120).returncode


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from netpress import api
    from netpress.data import load_split

    d = tmp_path_factory.mktemp("ddp")
    w = d / "base.safetensors"
    api.train("lenet-300-100", load_split("digits"), epochs=1, seed=0, out=w, threads=1)
    (d / "r.yaml").write_text(RECIPE)
    for n in (1, 2):
        assert _run([str(d), str(w), str(d / "r.yaml"), str(d / f"run{n}")], n) == 0
    return d, w


def test_two_processes_train_like_one(runs):
    d, _ = runs
    one, two = (json.loads((d / f"result-{n}.json").read_text()) for n in (1, 2))
    w1, w2 = (load_file(str(d / f"weights-{n}.safetensors")) for n in (1, 2))
    # each rank takes half of every batch; the weighted DDP mean is the whole batch's gradient
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-4
    assert abs(one["val"] - two["val"]) <= 0.002
    assert one["comm"] == [] and two["comm"][0]["world_size"] == 2
    c = two["comm"][0]
    assert c["bytes_per_step"] == c["allreduce_bytes_per_step"] == 4 * sum(
        v.numel() for v in w1.values())  # plain all-reduce: every fp32 gradient once per step
    assert sorted(p.name for p in (d / "run2").iterdir()) == ["checkpoints", "model.netpress",
                                                               "recipe.yaml", "run.json"]


def test_dead_rank_stops_and_resume_gives_same_bytes(runs):
    d, w = runs
    args = [str(d), str(w), str(d / "r.yaml"), str(d / "killed")]
    # rank 1 dies when stage 2 starts (the test-only hook of distributed/_testing.py)
    assert _run(args, 2, NETPRESS_TESTING="1", NETPRESS_FAULT="1:2") != 0
    assert (d / "killed" / "checkpoints" / "stage-01.safetensors").is_file()
    assert not (d / "killed" / "model.netpress").exists()
    (d / "result-2.json").rename(d / "uninterrupted-2.json")
    assert _run(args + ["--resume"], 2) == 0
    resumed = json.loads((d / "result-2.json").read_text())
    whole = json.loads((d / "uninterrupted-2.json").read_text())
    assert resumed["resumed_from"] == 1 and resumed["sha256"] == whole["sha256"]


def test_cli_nproc_reports_dead_rank(runs, tmp_path, capsys, monkeypatch):
    d, w = runs
    monkeypatch.setenv("NETPRESS_TESTING", "1")
    monkeypatch.setenv("NETPRESS_FAULT", "1:1")
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    code = main(["compress", "--model", "lenet-300-100", "--weights", str(w), "--data", "digits",
                 "--recipe", str(d / "r.yaml"), "--run-dir", str(tmp_path / "run"),
                 "--threads", "1", "--nproc", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "a training process died" in err and "--resume" in err, err

"""The recipe runner: run folders, checkpoints, resume, stage checks, shape-changing stages."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from netpress import Context
from netpress.api import load_model
from netpress.data.loaders import ArrayLoader
from netpress.encode.artifact import decode_artifact, model_from_artifact
from netpress.evaluate.metrics import predict
from netpress.pipeline import parse_recipe, run_recipe
from netpress.pipeline.checkpoints import checkpoint_path, last_complete, record_path
from netpress.pipeline.runner import CheckFailed
from netpress.train import fit
from netpress.zoo import build_model

FOUR = """\
name: four
stages:
  - _type: StructuredPrune
    ratio: 0.25
  - _type: MagnitudePrune
    sparsity: 0.6
    scope: layer
  - _type: Finetune
    epochs: 1
    lr: 0.001
  - _type: WeightShare
    bits: 4
    finetune_epochs: 1
"""


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    m = build_model("lenet-300-100")
    fit(m, ArrayLoader(*digits.train, batch_size=64, shuffle=True, seed=0), 2, lr=1e-3, seed=0,
        threads=1)
    return m


def _ctx(digits):
    return Context(digits, batch_size=64, threads=1)


def test_run_folder_and_resume_give_the_same_bytes(trained, digits, tmp_path):
    recipe = parse_recipe(FOUR)
    full = run_recipe(trained, recipe, _ctx(digits), "lenet-300-100", run_dir=tmp_path / "a",
                      meta={"weights": "w"})
    a = tmp_path / "a"
    assert (a / "model.netpress").read_bytes() == full.artifact
    info = json.loads((a / "run.json").read_text())
    assert info["status"] == "done" and len(info["stages"]) == 4
    assert last_complete(a, 4)[0] == 4
    # every checkpoint is a weights file the ordinary loader reads, shrunk layers included
    ckpt = load_model("lenet-300-100", checkpoint_path(a, 4))
    loader = ArrayLoader(*digits.test, batch_size=500)
    assert torch.equal(predict(ckpt, loader)[0], predict(full.model, loader)[0])
    # the structured stage shrank layer 1 from 300 to 225 outputs, and later stages kept it
    header, state = decode_artifact(full.artifact)
    assert state["1.weight"].shape == (225, 784) and header["model"]["resized"] is True
    w = state["3.weight"]
    assert 0.55 < float((w == 0).float().mean()) < 0.65  # Finetune kept the zeros
    assert w[w != 0].unique().numel() <= 16
    # a run killed after stage 2 (later files gone, a stale temp file left) resumes to the same bytes
    b = tmp_path / "b"
    shutil.copytree(a, b)
    for i in (3, 4):
        checkpoint_path(b, i).unlink()
        record_path(b, i).unlink()
    (b / "model.netpress").unlink()
    (b / "checkpoints" / ".stage-03.safetensors.abc.tmp").write_bytes(b"partial")
    resumed = run_recipe(trained, recipe, _ctx(digits), "lenet-300-100", run_dir=b, resume=True,
                         meta={"weights": "w"})
    assert resumed.resumed_from == 2
    assert resumed.artifact == full.artifact
    assert not list((b / "checkpoints").glob(".*.tmp"))
    # a corrupt checkpoint is not trusted: resume goes back to the stage before it
    c = tmp_path / "c"
    shutil.copytree(a, c)
    checkpoint_path(c, 3).write_bytes(b"garbage")
    again = run_recipe(trained, recipe, _ctx(digits), "lenet-300-100", run_dir=c, resume=True,
                       meta={"weights": "w"})
    assert again.resumed_from == 2 and again.artifact == full.artifact


def test_resume_refuses_another_command(trained, digits, tmp_path):
    recipe = parse_recipe("stages: [{_type: MagnitudePrune, sparsity: 0.5}]")
    run_recipe(trained, recipe, _ctx(digits), "lenet-300-100", run_dir=tmp_path, meta={"weights": "w"})
    other = parse_recipe("stages: [{_type: MagnitudePrune, sparsity: 0.7}]")
    with pytest.raises(Exception, match="different recipe"):
        run_recipe(trained, other, _ctx(digits), "lenet-300-100", run_dir=tmp_path, resume=True,
                   meta={"weights": "w"})
    with pytest.raises(Exception, match="already holds a run"):
        run_recipe(trained, recipe, _ctx(digits), "lenet-300-100", run_dir=tmp_path,
                   meta={"weights": "w"})


def test_stage_check_stops_the_run(trained, digits, tmp_path):
    recipe = parse_recipe("stages:\n  - _type: MagnitudePrune\n    sparsity: 0.99\n"
                          "    check: {max_drop_pp: 1.0}\n")
    assert recipe.checks == (1.0,)
    with pytest.raises(CheckFailed, match=r"stage 1 \(MagnitudePrune\) lowered validation accuracy"):
        run_recipe(trained, recipe, _ctx(digits), "lenet-300-100", run_dir=tmp_path)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "failed" and info["stages"][0]["check"]["passed"] is False
    assert info["stages"][0]["check"]["drop_pp"] > 1.0
    assert not (tmp_path / "model.netpress").exists()


def test_low_rank_and_student_stages_travel_in_the_artifact(trained, digits):
    recipe = parse_recipe("stages:\n  - _type: LowRank\n    energy: 0.8\n"
                          "  - _type: WeightShare\n    bits: 5\n")
    run = run_recipe(trained, recipe, _ctx(digits), "lenet-300-100")
    header, state = decode_artifact(run.artifact)
    assert header["model"]["edits"] and header["model"]["edits"][0]["op"]
    loaded = model_from_artifact(header, state)
    loader = ArrayLoader(*digits.test, batch_size=500)
    assert torch.equal(predict(loaded, loader)[0], predict(run.model, loader)[0])
    assert sum(t.numel() for t in state.values()) < sum(p.numel() for p in trained.parameters())

"""Every communication hook against a reference all-reduce of the same per-rank gradients
(2 CPU processes, gloo), and the bytes each one reports per step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netpress.distributed.hooks import CommHook, topk_compress
from netpress.errors import ConfigError

SRC = str(Path(__file__).resolve().parents[2] / "src")
DENSE = 4 * (16 * 32 + 16)  # fp32 bytes of the Linear(32, 16) gradients, per step


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("hooks") / "hooks.json"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
           "--nproc-per-node", "2", str(Path(__file__).with_name("hooks_worker.py")), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_powersgd_over_several_buckets(results):
    r = next(r for r in results if r["hook"] == "powersgd-buckets")
    assert r["max_rel_error"] < 1e-4  # rank-1 gradients, 4 buckets, no gloo abort


def test_hooks_match_reference_allreduce(results):
    results = [r for r in results if r["hook"] != "powersgd-buckets"]
    by = {(r["hook"], r["bytes_per_step"]): r for r in results}
    errors = {h: r["max_rel_error"] for (h, _), r in by.items()}
    assert errors["allreduce"] == 0.0  # exact mean
    assert errors["fp16"] < 1e-3 and errors["bf16"] < 1e-2  # the formats' rounding
    assert errors["powersgd"] < 1e-5  # rank-1 mean gradient: rank-1 PowerSGD is exact
    topk = [r for r in results if r["hook"] == "topk"]
    assert [r["max_rel_error"] for r in topk] == [0.0, 0.0]  # ratio 1, and 0.1 with residuals
    assert all(r["steps"] == 4 and r["allreduce_bytes_per_step"] == DENSE for r in results)


def test_hook_bytes_per_step(results):
    results = [r for r in results if r["hook"] != "powersgd-buckets"]
    b = {(r["hook"], i): r["bytes_per_step"] for i, r in enumerate(results)}
    assert b["allreduce", 0] == DENSE and b["fp16", 1] == b["bf16", 2] == DENSE // 2
    assert b["topk", 3] == 2 * DENSE  # ratio 1: every value plus an int32 index
    assert b["topk", 4] == 53 * 8  # ceil(0.1 * 528) values and indices
    # PowerSGD: 2 plain steps, then P (16) + Q (32) for the weight and the bias uncompressed
    assert b["powersgd", 5] == (2 * DENSE + 2 * 4 * (16 + 32 + 16)) / 4


def test_topk_error_feedback_keeps_what_was_not_sent():
    g = torch.tensor([0.5, -2.0, 0.25, 1.0])
    idx, vals, res = topk_compress(g, torch.zeros(4), 2)
    assert idx.tolist() == [1, 3] and vals.tolist() == [-2.0, 1.0]
    assert res.tolist() == [0.5, 0.0, 0.25, 0.0]
    idx, vals, res = topk_compress(torch.zeros(4), res, 1)  # the residual is sent next
    assert idx.tolist() == [0] and vals.tolist() == [0.5]


def test_comm_hook_config_errors():
    with pytest.raises(ConfigError, match="ratio"):
        CommHook("topk", ratio=0.0)
    with pytest.raises(ConfigError, match="start_iter"):
        CommHook("powersgd", start_iter=1)

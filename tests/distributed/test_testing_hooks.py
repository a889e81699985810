"""The test-only fault hook: it kills the process only when NETPRESS_TESTING=1 and
NETPRESS_FAULT name the rank and stage; NETPRESS_FAULT alone is ignored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
CODE = ("from netpress.distributed._testing import fault_point\n"
        "fault_point(1); fault_point(2, rank=1); fault_point(2)\n"
        "print('survived')\n")


def _run(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("NETPRESS_TESTING", "NETPRESS_FAULT")}
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          timeout=60, env={**clean, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1",
                                           **env})


@pytest.mark.parametrize("env", [{}, {"NETPRESS_FAULT": "0:2"},
                                 {"NETPRESS_TESTING": "0", "NETPRESS_FAULT": "0:2"},
                                 {"NETPRESS_TESTING": "1"},
                                 {"NETPRESS_TESTING": "1", "NETPRESS_FAULT": "0:3"}])
def test_inert_without_both_variables_or_on_other_stages(env):
    out = _run(**env)
    assert out.returncode == 0 and "survived" in out.stdout, out.stderr


def test_exits_17_at_the_named_rank_and_stage():
    assert _run(NETPRESS_TESTING="1", NETPRESS_FAULT="0:2").returncode == 17  # rank 0 outside a group
    out = _run(NETPRESS_TESTING="1", NETPRESS_FAULT="1:2")  # fault_point(2, rank=1)
    assert out.returncode == 17 and "survived" not in out.stdout

"""Two ``netpress search`` worker processes on one SQLite storage run the requested number
of trials together: every trial number once, none lost, none run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_two_workers_share_one_study(tmp_path, digits):
    from netpress import api

    w = tmp_path / "base.safetensors"
    api.train("lenet-300-100", digits, epochs=1, seed=0, out=w, threads=1)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "netpress", "search", "--model", "lenet-300-100", "--weights",
         str(w), "--data", "digits", "--max-acc-drop", "2", "--study-trials", "5",
         "--worker", str(k), "--storage", url, "--study-name", "shared", "--epochs", "0.1",
         "--run-dir", str(tmp_path / f"w{k}"), "--threads", "1", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    outs = [p.communicate(timeout=150) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    trials = optuna.load_study(study_name="shared", storage=url).trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.number for t in done) == [0, 1, 2, 3, 4]
    assert all(t.user_attrs.get("surplus") for t in trials if t not in done)  # never run
    assert {t.user_attrs["worker"] for t in done} <= {0, 1}
    seen = [len(json.loads(out)["trials"]) for out, _ in outs]
    assert max(seen) == 5 and min(seen) >= 4  # a worker reports what was complete when it ended

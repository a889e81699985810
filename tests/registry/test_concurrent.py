"""Registrations from several processes at once into one fresh SQLite store lose nothing."""

import json
import subprocess
import sys

from netpress.registry import Store, describe, sha256_file

from .conftest import make_run

WORKER = """
import json, sys
from netpress.registry import Store, register
store = Store(sys.argv[1])
out = [register(store, d, "shared")["version"] for d in sys.argv[2:]]
print(json.dumps(out))
"""


def test_three_processes_register_six_versions(tmp_path, uri):
    dirs = [make_run(tmp_path / f"c{i}", 10 + i, 0.1, 12.0) for i in range(6)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, uri, str(dirs[2 * i]),
                               str(dirs[2 * i + 1])], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    versions = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        versions += json.loads(out.strip().splitlines()[-1])
    assert sorted(versions, key=int) == [str(i) for i in range(1, 7)]
    d = describe(Store(uri), "shared")
    assert len(d["versions"]) == 6
    shas = {v["lineage"]["artifact_sha256"] for v in d["versions"]}
    assert shas == {sha256_file(p / "model.netpress") for p in dirs}

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

# find_spec, not importorskip: importing openvino here would write the real ~/intel
pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                reason="the openvino extra is not installed")


def test_openvino_import_leaves_the_home_folder_alone(tmp_path):
    # openvino's telemetry writes ~/intel when the package is imported; netpress imports
    # it with $HOME pointed elsewhere, so a fresh home stays empty and $HOME is restored
    home = tmp_path / "home"
    home.mkdir()
    code = ("import os; from netpress.export.runtimes import openvino_available; "
            "assert openvino_available(); "
            "from openvino_telemetry import Telemetry; "
            "assert not getattr(Telemetry(), 'consent', False); print(os.environ['HOME'])")
    env = {**os.environ, "HOME": str(home)}
    env.pop("CI", None)  # telemetry is off under CI=true; test the ordinary case
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(home)
    assert list(home.iterdir()) == []

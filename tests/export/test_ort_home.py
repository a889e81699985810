import os
import subprocess
import sys
from pathlib import Path

CODE = """
import onnx, torch
from onnx import TensorProto, helper
from netpress.export.runtimes import ort_runner
from netpress.export.int8 import ort_dynamic

w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], [0.1 * i for i in range(12)])
g = helper.make_graph([helper.make_node("MatMul", ["input", "w"], ["output"])], "g",
                      [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
                      [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])], [w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(m, "{d}/m.onnx")
assert ort_runner("{d}/m.onnx")(torch.ones(2, 4)).shape == (2, 3)
assert ort_runner(ort_dynamic("{d}/m.onnx", "{d}/q.onnx"))(torch.ones(2, 4)).shape == (2, 3)
"""


def test_onnxruntime_leaves_the_home_folder_alone(tmp_path):
    # ONNX Runtime writes a telemetry device id and database to ~/.cache/Microsoft when it is
    # imported; netpress imports it with telemetry off, so a fresh home stays empty
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", CODE.format(d=work)], env=env,
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert list(home.iterdir()) == []

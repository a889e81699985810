"""The torch-free runtime: files load and run with numpy and ONNX Runtime alone, nothing a
file names is imported, every file netpress writes is read, hostile files are refused."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn

from netpress import runtime
from netpress.encode.artifact import artifact_bytes, decode_artifact, load_artifact, model_from_artifact
from netpress.encode.container import pack_container, read_header
from netpress.errors import FormatError
from netpress.zoo import build_model

BLOCK = textwrap.dedent("""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "onnx", "constriction"):
                raise ImportError("blocked: " + name)
    sys.meta_path.insert(0, Block())
""")


def _shared_lenet(seed: int = 0) -> nn.Module:
    """A lenet5-caffe with Deep Compression's shape: 90 % zeros, 16 shared values."""
    torch.manual_seed(seed)
    m = build_model("lenet5-caffe").eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                keep = p.abs() >= p.abs().flatten().quantile(0.9)
                levels = torch.linspace(-0.2, 0.2, 16)
                p.copy_(levels[torch.bucketize(p.clamp(-0.2, 0.2), levels).clamp(max=15)] * keep)
    return m


def test_runtime_needs_no_torch_onnx_or_constriction(tmp_path):
    model = _shared_lenet()
    data = artifact_bytes(model, "lenet5-caffe", coder="ans")
    (tmp_path / "m.netpress").write_bytes(data)
    x = torch.randn(5, 1, 28, 28)
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        want = model(x).numpy()
    code = BLOCK + textwrap.dedent(f"""
        import numpy as np
        from netpress import runtime
        m = runtime.load({str(tmp_path / 'm.netpress')!r}, threads=1)
        y = m.run(np.load({str(tmp_path / 'x.npy')!r}))
        np.save({str(tmp_path / 'y.npy')!r}, y)
        print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'onnx', 'constriction')))
    """)
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.path.abspath(src)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    got = np.load(tmp_path / "y.npy")
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_a_file_naming_an_importable_factory_never_imports_it(tmp_path, monkeypatch):
    pkg = tmp_path / "evil_factory_mod.py"
    marker = tmp_path / "imported"
    pkg.write_text(f"open({str(marker)!r}, 'w').write('x')\n"
                   "import torch\ndef build():\n    return torch.nn.Linear(4, 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    lin = nn.Sequential(nn.Linear(4, 2)).eval()
    from netpress.encode.container import unpack_container

    head, streams = unpack_container(artifact_bytes(lin, "x", example=torch.zeros(1, 4)))
    head.pop("streams")
    head["model"]["spec"] = "evil_factory_mod:build"  # what a hostile (or moved) file may say
    data = pack_container(head, streams)
    (tmp_path / "m.netpress").write_bytes(data)
    loaded, header = load_artifact(tmp_path / "m.netpress")
    rt = runtime.load(tmp_path / "m.netpress")
    x = torch.randn(3, 4)
    assert header["model"]["spec"] == "evil_factory_mod:build"
    assert "evil_factory_mod" not in sys.modules and not marker.exists()
    assert type(loaded).__name__ == "GraphModule"
    with torch.no_grad():
        assert torch.allclose(loaded(x), lin(x), atol=1e-6)
    assert np.allclose(rt.run(x.numpy()), lin(x).detach().numpy(), atol=1e-6)
    head["model"]["spec"] = "os:getpid"
    calls = []
    monkeypatch.setattr(os, "getpid", lambda: calls.append(1) or 1)
    assert type(model_from_artifact(*decode_artifact(pack_container(head, streams)))).__name__ \
        == "GraphModule" and not calls


def _extremes():
    zeros = build_model("lenet-300-100")
    one = build_model("lenet-300-100")
    pruned_layer = build_model("lenet-300-100")
    with torch.no_grad():
        for p in zeros.parameters():
            p.zero_()
        for p in one.parameters():
            p.zero_()
        one[3].weight[7, 11] = 0.5
        pruned_layer[1].weight.zero_()
        pruned_layer[1].bias.zero_()
    return {"all-zero": zeros, "one-nonzero": one, "fully-pruned-layer": pruned_layer}


@pytest.mark.parametrize("name", ["all-zero", "one-nonzero", "fully-pruned-layer"])
def test_every_file_netpress_writes_it_reads(name):
    model = _extremes()[name].eval()
    data = artifact_bytes(model, "lenet-300-100")
    header, tensors = decode_artifact(data)
    loaded = model_from_artifact(header, tensors)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # ONNX Runtime sums in another order than torch: equal to float rounding
    assert np.allclose(runtime.Model(data).run(x.numpy()), model(x).detach().numpy(),
                       rtol=1e-5, atol=1e-6)
    assert len(data) < 2000 if name != "fully-pruned-layer" else True


def test_allocation_bound_refuses_hostile_claims():
    head = {"format": "netpress-artifact", "graph": {"ir_version": 8, "opsets": {"": 17},
            "nodes": [], "inputs": [], "outputs": [{"name": "w", "dtype": "float32", "shape": [1]}],
            "initializers": ["w"]},
            "tensors": [{"name": "w", "shape": [1 << 30], "dtype": "float32", "encoding": "shared",
                         "nonzero": 0, "codebook": {"size": 0, "stream": 0},
                         "positions": {"kind": "bitmap", "stream": 0},
                         "values": {"stream": 0, "coder": "huffman", "alphabet": 1, "symbols": 0,
                                    "table_bytes": 0}}]}
    t0 = time.perf_counter()
    with pytest.raises(FormatError, match="may make a reader allocate"):
        runtime.read_file(pack_container(head, [b""]))
    assert time.perf_counter() - t0 < 1.0


def test_bad_graphs_are_format_errors():
    data = artifact_bytes(nn.Sequential(nn.Linear(3, 2)), "x", example=torch.zeros(1, 3))
    head, _ = read_header(data)
    from netpress.encode.container import unpack_container

    _, streams = unpack_container(data)
    head.pop("streams")
    for bad in ({"nodes": "x"}, {"nodes": [{"op": 3}]}, {"initializers": ["nope"]},
                {"inputs": [{"name": "x", "dtype": "complex", "shape": []}]},
                {"nodes": [{"op": "Gemm", "in": ["input", "0.weight"], "out": ["output"],
                            "attrs": [["alpha", "f", "one"]]}]},
                {"nodes": [{"op": "NoSuchOp", "in": ["input"], "out": ["output"]}]}):
        h = json.loads(json.dumps(head))
        h["graph"].update(bad)
        with pytest.raises(FormatError):
            runtime.Model(pack_container(h, streams))
    h = json.loads(json.dumps(head))
    del h["graph"]
    with pytest.raises(FormatError, match="no graph"):
        runtime.Model(pack_container(h, streams))


def test_fuzz_mutations_give_only_format_errors():
    """A short fuzz of a Deep-Compression-shaped file (the long run is a benchmark)."""
    data = artifact_bytes(_shared_lenet(1), "lenet5-caffe", coder="auto")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    from netpress.encode.container import unpack_container

    head, streams = unpack_container(data)
    head.pop("streams")
    outcomes = {"format_error": 0, "decoded": 0}
    for i in range(400):
        bad = bytearray(data)
        kind = i % 4
        if kind == 0:
            pos = int(rng.integers(len(bad)))
            bad[pos] = (bad[pos] + int(rng.integers(1, 256))) % 256
        elif kind == 1:
            bad = bad[:int(rng.integers(len(bad)))]
        elif kind == 2:
            pos = int(rng.integers(len(bad)))
            bad[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 9))).astype(np.uint8))
        else:  # checksums recomputed: a changed tensor entry reaches the decoders
            h = json.loads(json.dumps(head))
            t = h["tensors"][int(rng.integers(len(h["tensors"])))]
            key = sorted(t)[int(rng.integers(len(t)))]
            t[key] = [None, -1, 0, 1 << 40, "x", [], {"stream": 0}][int(rng.integers(7))]
            bad = bytearray(pack_container(h, streams))
        try:
            runtime.Model(bytes(bad), 1)
            outcomes["decoded"] += 1
        except FormatError:
            outcomes["format_error"] += 1
    assert outcomes["format_error"] + outcomes["decoded"] == 400  # nothing else was raised
    assert outcomes["format_error"] >= 300
    assert time.perf_counter() - t0 < 60

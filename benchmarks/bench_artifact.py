"""The ``.netpress`` file as a deployment file (format 3): the graph inside, run by
netpress's torch-free runtime, and hostile files refused.

    python benchmarks/bench_artifact.py minilm   # 4-bit all-MiniLM-L6-v2 artifact: size, outputs, speed
    python benchmarks/bench_artifact.py dc       # the Deep Compression lenet-300-100 file, runtime
    python benchmarks/bench_artifact.py fuzz     # >= 100,000 mutations of both files

``minilm``: all-MiniLM-L6-v2 quantized to 4 bits (GPTQ with act-order and clipped ranges,
group 128, 4-bit token table; ``WeightOnly`` with ``embedding_bits=4``), written as a
``.netpress`` file and run by ``netpress.runtime`` — in this process and in a fresh virtual
environment holding only numpy and onnxruntime (no torch, onnx or constriction). Outputs
on 600 held-out fortunes against the torch model that wrote the file; sentences per second
over 256 held-out texts at batch 1 and 32, interleaved with fp32 torch eager and the fused
fp32 ONNX Runtime graph, medians of 3 passes, 2 threads. ``dc`` reads the files that
``bench_deep_compression.py lenet-300-100 lenet5-caffe`` leaves in the temp folder and
times each in the runtime against its uncompressed baseline exported to fp32 ONNX Runtime
(the file decodes to dense fp32 layers, so equal speed is the aim). ``fuzz`` mutates
both files (a random byte changed, a truncation, 1-8 random bytes inserted, or — with the
checksums recomputed, so the change reaches the decoders — a stream byte or a header value
changed) and counts
what the reader does (for the small file the whole load, ONNX Runtime session included):
the one format error, a valid file with other values (a resealed change), anything else (a
crash), a read slower than 10 s (a hang), or a peak allocation over the stated bound.
Writes benchmarks/results/artifact-<part>.json.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from netpress import runtime  # noqa: E402
from netpress.errors import FormatError  # noqa: E402

THREADS = 2
OUT = HERE / "results"
TMP = Path(tempfile.gettempdir())
MINILM_FILE = TMP / "netpress-minilm-w4.netpress"
DC_FILE = TMP / "netpress-lenet-300-100-deep-compression.netpress"


def _save(name: str, rec: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / f"artifact-{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps(rec)[:2000], flush=True)


def fresh_venv_run(path: Path, feeds: dict[str, np.ndarray]) -> dict:
    """Run ``path`` in a new virtual environment with only numpy and onnxruntime."""
    venv = TMP / "netpress-runtime-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "numpy==2.4.6", "onnxruntime==1.32.0"], check=True)
    inputs = TMP / "netpress-runtime-inputs.npz"
    np.savez(inputs, **feeds)
    code = (
        "import json, sys, time, numpy as np\n"
        "t = time.perf_counter()\n"
        "from netpress import runtime\n"
        f"m = runtime.load({str(path)!r}, threads={THREADS})\n"
        "load_s = time.perf_counter() - t\n"
        f"f = dict(np.load({str(inputs)!r}, allow_pickle=False))\n"
        f"np.save({str(TMP / 'netpress-runtime-out.npy')!r}, m.run(f))\n"
        "mods = sorted({k.split('.')[0] for k in sys.modules})\n"
        "print(json.dumps({'load_seconds': load_s, 'torch': 'torch' in mods, "
        "'onnx': 'onnx' in mods, 'constriction': 'constriction' in mods}))\n")
    src = str(HERE.parent / "src")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": src,
                              "OMP_NUM_THREADS": str(THREADS)})
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True,
                            check=True).stdout.split()
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec["packages"] = freeze
    rec["outputs"] = np.load(TMP / "netpress-runtime-out.npy")
    return rec


def minilm() -> dict:
    from bench_transformers import setup

    from netpress.config import apply
    from netpress.context import Context
    from netpress.encode.artifact import artifact_bytes
    from netpress.export.onnx import export_onnx
    from netpress.export.runtimes import ort_runner
    from netpress.io import file_size, save_weights, write_bytes
    from netpress.profile.throughput import throughput
    from netpress.profile.timing import torch_runner
    from netpress.techniques.quantize.modules import baked_copy
    from netpress.techniques.quantize.weight_only import WeightOnly

    spec, model, task = setup(6000)
    ctx = Context(task, seed=0, threads=THREADS)
    tmp = Path(tempfile.mkdtemp(prefix="np-bench-"))
    fp32_bytes = file_size(save_weights(model, tmp / "fp32.safetensors"))
    t0 = time.time()
    w4 = apply(__import__("copy").deepcopy(model), WeightOnly(
        bits=4, group_size=128, method="gptq", act_order=True, clip=True, embedding_bits=4), ctx)
    quant_s = time.time() - t0
    t0 = time.time()
    data = artifact_bytes(w4, spec, example=task.example_inputs(1, "test"))
    write_s = time.time() - t0
    write_bytes(MINILM_FILE, data)
    t0 = time.time()
    rt = runtime.Model(data, THREADS)
    load_s = time.time() - t0
    names = rt.input_names

    def run_rt(x):
        return torch.from_numpy(rt.run({k: x[k].numpy() for k in names}))

    baked = baked_copy(w4).eval()
    got, _ = task.runner_outputs(run_rt, "test")
    mine, _ = task.predict(baked, "test")
    ref, _ = task.predict(model, "test")
    fp = export_onnx(model, task.example_inputs(1, "test"), tmp / "fp32.onnx")
    runners = {"torch-fp32": torch_runner(model), "ort-fp32-fused": ort_runner(fp, THREADS),
               "netpress-runtime-w4": run_rt}
    speed = throughput(runners, task.part("test")[0], (1, 32), passes=3, limit=256)
    x = {k: v[:64].numpy() for k, v in task.part("test")[0].items() if k in names}
    venv = fresh_venv_run(MINILM_FILE, x)
    same = np.abs(venv.pop("outputs") - rt.run(x)).max()
    return {
        "model": spec, "form": "WeightOnly(bits=4, group_size=128, gptq, act_order, clip, "
        "embedding_bits=4), no LSQ", "file_bytes": len(data), "fp32_safetensors_bytes": fp32_bytes,
        "smaller_than_fp32": fp32_bytes / len(data), "graph_ops": sorted(
            {n["op"] for n in rt.header["graph"]["nodes"]}),
        "seconds": {"quantize": quant_s, "write": write_s, "load": load_s},
        "runtime_vs_torch_w4": {"max_rel_error": task.output_error(got, mine),
                                **task.compare_outputs(got, mine)},
        "runtime_vs_fp32": task.compare_outputs(got, ref),
        "torch_w4_vs_fp32": task.compare_outputs(mine, ref),
        "throughput": speed, "texts_timed": 256, "threads": THREADS,
        "fresh_venv": {**venv, "max_abs_diff_to_this_process": float(same)},
    }


def dc() -> dict:
    """Both Deep Compression files: the runtime against the torch model the file holds and
    the fp32 baseline in ONNX Runtime, timed interleaved over 2,048 test images."""
    from common import baseline, fashion

    from netpress.encode.artifact import decode_artifact, model_from_artifact
    from netpress.encode.inspect import inspect_bytes
    from netpress.export.onnx import export_onnx
    from netpress.export.runtimes import ort_runner
    from netpress.profile.throughput import throughput

    split = fashion()
    out = {}
    for spec in ("lenet-300-100", "lenet5-caffe"):
        path = TMP / f"netpress-{spec}-deep-compression.netpress"
        if not path.exists():
            raise SystemExit(f"{path} is missing: run benchmarks/bench_deep_compression.py "
                             f"{spec} first")
        data = path.read_bytes()
        info = inspect_bytes(data)
        torch_model = model_from_artifact(*decode_artifact(data))
        rt = runtime.Model(data, THREADS)
        x = split.test[0][:2048]
        with torch.no_grad():
            want = torch_model(x).numpy()
        got = rt.run(x.numpy())
        venv = fresh_venv_run(path, {"input": x[:256].numpy()})
        base, _ = baseline(spec, split)
        fp = export_onnx(base.eval(), x[:1], Path(tempfile.mkdtemp()) / "fp32.onnx")
        speed = throughput({"ort-fp32-baseline": ort_runner(fp, THREADS),
                            "netpress-runtime": lambda b, rt=rt: torch.from_numpy(rt.run(b.numpy()))},
                           x, (1, 256), passes=5, limit=2048)
        out[spec] = {
            "file_bytes": len(data), "compression_ratio": info["compression_ratio"],
            "header_bytes": info["header_bytes"], "params": info["params"],
            "runtime_max_abs_error": float(np.abs(got - want).max()),
            "max_abs_logit": float(np.abs(want).max()),
            "argmax_equal": float((got.argmax(1) == want.argmax(1)).mean()),
            "throughput": speed,
            "fresh_venv": {**{k: v for k, v in venv.items() if k != "outputs"},
                           "max_abs_error": float(np.abs(venv["outputs"] - want[:256]).max())}}
        print(spec, json.dumps(out[spec])[:800], flush=True)
    return out


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _resealed(data: bytes, rng: np.random.Generator, i: int) -> bytes:
    """A valid container (CRCs recomputed) around a changed stream byte or header value,
    so the mutation reaches the graph check and the tensor decoders behind the checksums."""
    from netpress.encode.container import pack_container, unpack_container

    head, streams = unpack_container(data)
    head.pop("streams")
    if i % 2 and streams:
        k = int(rng.integers(len(streams)))
        if streams[k]:
            b = bytearray(streams[k])
            pos = int(rng.integers(len(b)))
            b[pos] ^= int(rng.integers(1, 256))
            streams[k] = bytes(b)
    else:
        leaves = list(_leaves({"graph": head["graph"], "tensors": head["tensors"]}))
        path = leaves[int(rng.integers(len(leaves)))]
        node = head
        for key in path[:-1]:
            node = node[key]
        old = node[path[-1]]
        choices = [int(rng.integers(-3, 1 << 20)), -1, 0, 1 << 40, "x", None, [], 2.5]
        if isinstance(old, int) and not isinstance(old, bool):
            choices += [old + 1, old - 1, old * 2]
        node[path[-1]] = choices[int(rng.integers(len(choices)))]
    return pack_container(head, streams)


def _mutate(data: bytes, rng: np.random.Generator, i: int) -> bytes:
    kind = i % 5
    if kind >= 3:
        return _resealed(data, rng, i)
    if kind == 0:
        pos = int(rng.integers(len(data)))
        b = bytearray(data)
        b[pos] = (b[pos] + int(rng.integers(1, 256))) % 256
        return bytes(b)
    if kind == 1:
        return data[:int(rng.integers(len(data)))]
    pos = int(rng.integers(len(data) + 1))
    return data[:pos] + rng.integers(0, 256, int(rng.integers(1, 9))).astype(np.uint8).tobytes() \
        + data[pos:]


def fuzz_one(data: bytes, n: int, seed: int, traced: int, session: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    counts = {"format_error": 0, "crash": 0, "hang": 0, "over_bound": 0, "decoded": 0}
    crashes, slowest, peak_over = [], 0.0, 0.0
    for i in range(n):
        bad = _mutate(data, rng, i)
        trace = i < traced
        if trace:
            tracemalloc.start()
        t = time.perf_counter()
        try:
            if session:  # the whole load: decode, ONNX bytes, ONNX Runtime session
                runtime.Model(bad, 1)
            else:
                runtime.read_file(bad)
            counts["decoded"] += 1  # a valid file with other values (a resealed change)
        except FormatError:
            counts["format_error"] += 1
        except Exception as e:  # anything else is a crash of the reader
            counts["crash"] += 1
            crashes.append(f"{type(e).__name__}: {e}"[:200])
        dt = time.perf_counter() - t
        slowest = max(slowest, dt)
        counts["hang"] += dt > 10
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            bound = runtime.allocation_bound(len(bad)) + 4 * len(bad)  # + the copies read
            peak_over = max(peak_over, peak / bound)
            counts["over_bound"] += peak > bound
    return {"mutations": n, "file_bytes": len(data), **counts, "crash_examples": crashes[:5],
            "slowest_read_s": slowest, "traced_allocations": traced,
            "peak_allocation_over_bound": peak_over}


def fuzz() -> dict:
    n_dc = int(os.environ.get("FUZZ_DC", "100000"))
    n_lm = int(os.environ.get("FUZZ_MINILM", "300"))  # a resealed one decodes 12 MB: ~3 s
    out = {}
    for name, path, n, traced in (("deep-compression-lenet-300-100", DC_FILE, n_dc, 2000),
                                  ("minilm-w4", MINILM_FILE, n_lm, 20)):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run the dc / minilm parts first")
        t0 = time.time()
        out[name] = fuzz_one(path.read_bytes(), n, seed=0, traced=traced,
                             session=name.startswith("deep"))
        out[name]["seconds"] = time.time() - t0
        print(name, json.dumps(out[name]), flush=True)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


if __name__ == "__main__":
    torch.set_num_threads(THREADS)
    parts = sys.argv[1:] or ["dc", "minilm", "fuzz"]
    for part in parts:
        _save(part, {"minilm": minilm, "dc": dc, "fuzz": fuzz}[part]())

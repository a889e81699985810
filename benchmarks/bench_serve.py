"""Load test of ``netpress serve`` on 127.0.0.1: fp32 and int8 variants of lenet-300-100,
then a hot swap to a new champion from the registry under load.

    python benchmarks/bench_serve.py                       # Fashion-MNIST baseline (cached)
    python benchmarks/bench_serve.py --small --requests 300 --seconds 10   # digits, quick check

The baseline (fp32) and a static-int8 PTQ copy (calibrated on the calibration split) are
written as ``.netpress`` files with their accuracy on test data. A throwaway SQLite
registry in a temp folder gets version 1 (fp32, promoted to ``champion``) and version 2
(the int8 copy, promoted behind ``--max-acc-drop 1``). The server runs in its own process
(``python -m netpress.serve models:/bench@champion int8=FILE``, torch-free, ONNX Runtime
1 thread per variant, shadow mode at the default 10 % and drift on) and a bounded client
pool (``--clients`` threads, keep-alive HTTP, batch-1 requests of test images) sends
traffic in phases, each stopping after ``--requests`` requests or ``--seconds`` seconds:

1. ``fp32``: every request pins the fp32 champion; 2. ``int8``: every request pins int8;
3. ``budget``: requests carry ``latency_budget_ms`` (``--budget``) and the ladder picks;
4. ``swap``: like 1, and when a third of the requests is answered, version 2 is promoted
   and ``POST /admin/reload`` hot-swaps the champion while traffic flows.

Per phase: requests per second, p50 / p99 client latency, failed requests (any non-200 or
connection error), the variants and versions that answered, mean micro-batch size (from
``/metrics``). Client and server share the machine's cores; the client's own cost is in the
latency. Writes benchmarks/results/serve.json (``serve-small.json`` with ``--small``).
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import ROOT, baseline, fashion, save_result

from netpress import api  # noqa: E402
from netpress.config import apply  # noqa: E402
from netpress.context import Context  # noqa: E402
from netpress.encode.artifact import artifact_bytes  # noqa: E402
from netpress.io import write_json  # noqa: E402
from netpress.registry import Store, promote, register  # noqa: E402
from netpress.runtime import Model  # noqa: E402
from netpress.serve.drift import build_reference  # noqa: E402
from netpress.serve.server import free_port  # noqa: E402
from netpress.techniques.quantize.ptq import StaticInt8  # noqa: E402

SPEC = "lenet-300-100"


def write_version(folder: Path, data: bytes, base_data: bytes, split, base_acc: float | None,
                  calib: np.ndarray) -> float:
    """A run folder the registry accepts: artifact, baseline, reference, run.json, report.json
    (accuracy of the artifact in the runtime on the test split)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.netpress").write_bytes(data)
    (folder / "baseline.netpress").write_bytes(base_data)
    model = Model(data, threads=2)
    x, y = split.test[0].numpy(), split.test[1].numpy()
    acc = float((np.concatenate([model.run(x[i:i + 1000]) for i in range(0, len(x), 1000)])
                 .argmax(1) == y).mean())
    write_json(folder / "reference.json", build_reference(calib, model.run(calib)))
    base = acc if base_acc is None else base_acc
    write_json(folder / "run.json", {"version": 1, "kind": "compress", "model": SPEC,
                                     "data": split.name, "status": "done", "recipe": None})
    write_json(folder / "report.json", {
        "model": SPEC, "accuracy": acc, "baseline_accuracy": base,
        "accuracy_drop_pp": (base - acc) * 100, "size_bytes": len(data),
        "baseline_size_bytes": len(base_data), "compression_ratio": len(base_data) / len(data)})
    return acc


def client(host: str, port: int, bodies: list[bytes], stop: threading.Event, out: list,
           limit: int, start: int = 0) -> None:
    """Send requests on one keep-alive connection until ``stop`` or ``limit`` answers,
    cycling through ``bodies`` from ``start`` (clients start apart, so the server's drift
    window sees the test set's variety, not a few images repeated in lockstep)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    i = start
    while not stop.is_set() and len(out) < limit:
        body = bodies[i % len(bodies)]
        i += 1
        t = time.perf_counter()
        try:
            conn.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
            ans = json.loads(raw) if r.status == 200 else {}
            out.append((time.perf_counter() - t, r.status, ans.get("variant"), ans.get("version")))
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
            out.append((time.perf_counter() - t, f"error: {e}", None, None))
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.close()


def batch_means(text: str) -> dict[str, float]:
    """Mean micro-batch size per variant from a /metrics exposition."""
    sums, counts = {}, {}
    for line in text.splitlines():
        for kind, store in (("_sum", sums), ("_count", counts)):
            if line.startswith(f"netpress_batch_size{kind}{{"):
                variant = line.split('variant="', 1)[1].split('"', 1)[0]
                store[variant] = float(line.rsplit(" ", 1)[1])
    return {v: sums[v] / counts[v] for v in sums if counts.get(v)}


def phase(name: str, port: int, bodies: list[bytes], n: int, seconds: float, clients: int,
          on_progress=None) -> dict:
    """One bounded phase of traffic; ``on_progress(answers)`` runs once a third is answered."""
    out: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=("127.0.0.1", port, bodies, stop, out, n,
                                                     k * len(bodies) // clients))
               for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    fired = None
    while any(t.is_alive() for t in threads):
        if time.perf_counter() - t0 > seconds:
            stop.set()
        if on_progress is not None and fired is None and len(out) >= n // 3:
            fired = on_progress(len(out))
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    lat = np.array([o[0] for o in out]) * 1000
    failed = [o for o in out if o[1] != 200]
    variants: dict = {}
    for o in out:
        if o[1] == 200:
            variants[f"{o[2]} {o[3]}"] = variants.get(f"{o[2]} {o[3]}", 0) + 1
    row = {"phase": name, "requests": len(out), "failed": len(failed), "seconds": wall,
           "rps": len(out) / wall, "p50_ms": float(np.percentile(lat, 50)),
           "p99_ms": float(np.percentile(lat, 99)), "answered_by": variants,
           "first_failures": [str(f[1]) for f in failed[:3]]}
    if fired is not None:
        row["swap"] = fired
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--small", action="store_true", help="digits, 1 training epoch (a quick check)")
    p.add_argument("--requests", type=int, default=5000, help="requests per phase (bound)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per phase (bound)")
    p.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    p.add_argument("--budget", type=float, default=3.0, help="latency_budget_ms of phase 3")
    a = p.parse_args()
    if a.small:
        from netpress.data import load_split

        split = load_split("digits")
        net, _ = api.train(SPEC, split, epochs=1, seed=0, threads=2)
    else:
        split = fashion()
        net, _ = baseline(SPEC, split)
    net.eval()
    ex = split.test[0][:1]
    int8 = apply(copy.deepcopy(net), StaticInt8(), Context(split, seed=0))
    fp32_bytes, int8_bytes = artifact_bytes(net, SPEC, example=ex), artifact_bytes(int8, SPEC, example=ex)
    calib = split.calib[0].numpy()
    x = split.test[0].numpy()
    with tempfile.TemporaryDirectory(prefix="netpress-bench-serve-") as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'reg' / 'mlflow.db'}"
        store = Store(uri)
        acc32 = write_version(tmp / "v1", fp32_bytes, fp32_bytes, split, None, calib)
        acc8 = write_version(tmp / "v2", int8_bytes, fp32_bytes, split, acc32, calib)
        register(store, tmp / "v1", "bench")
        register(store, tmp / "v2", "bench")
        assert promote(store, "bench", "1", max_acc_drop=1.0)[1]
        port = free_port()
        env_cmd = [sys.executable, "-m", "netpress.serve", "models:/bench@champion",
                   f"int8={tmp / 'v2' / 'model.netpress'}", "--port", str(port),
                   "--tracking-uri", uri]
        server = subprocess.Popen(env_cmd, cwd=tmp, env={"PYTHONPATH": str(ROOT / "src"),
                                                         "PATH": "/usr/bin:/bin", "HOME": str(tmp),
                                                         "OMP_NUM_THREADS": "1"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", "/readyz")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit(f"server did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)

            def bodies(**extra):
                return [json.dumps({"inputs": x[i:i + 1].tolist(), **extra}).encode()
                        for i in range(min(2000, len(x)))]

            def swap(answered: int) -> dict:
                ok = promote(store, "bench", "2", max_acc_drop=1.0)[1]
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request("POST", "/admin/reload", b"{}", {"Content-Type": "application/json"})
                r = c.getresponse()
                return {"promoted": ok, "at_request": answered, "status": r.status,
                        "answer": json.loads(r.read())}

            rows = [phase("fp32", port, bodies(variant="main"), a.requests, a.seconds, a.clients),
                    phase("int8", port, bodies(variant="int8"), a.requests, a.seconds, a.clients),
                    phase("budget", port, bodies(latency_budget_ms=a.budget), a.requests, a.seconds,
                          a.clients),
                    phase("swap", port, bodies(variant="main"), a.requests, a.seconds, a.clients,
                          on_progress=swap)]
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            means = batch_means(c.getresponse().read().decode())
            c.request("GET", "/v1/status")
            status = json.loads(c.getresponse().read())
        finally:
            server.terminate()
            server.wait(timeout=30)
    result = {"model": SPEC, "data": split.name, "small": a.small, "clients": a.clients,
              "requests_per_phase": a.requests, "seconds_per_phase": a.seconds,
              "budget_ms": a.budget, "test_accuracy": {"fp32": acc32, "int8": acc8},
              "artifact_bytes": {"fp32": len(fp32_bytes), "int8": len(int8_bytes)},
              "phases": rows, "mean_batch_size": means, "status_after": status,
              "note": "client and server share the machine; ONNX Runtime 1 thread per variant"}
    path = save_result("serve-small" if a.small else "serve", result)
    print("| phase | requests | failed | req/s | p50 ms | p99 ms | answered by |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        by = ", ".join(f"{k}: {v}" for k, v in r["answered_by"].items())
        print(f"| {r['phase']} | {r['requests']} | {r['failed']} | {r['rps']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {by} |")
    print(f"mean batch size {means}; wrote {path}")


if __name__ == "__main__":
    main()

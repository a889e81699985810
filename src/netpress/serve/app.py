"""The ASGI app of ``netpress serve`` (FastAPI): predict, health, readiness, metrics, status.

| route | what |
|---|---|
| ``POST /v1/predict`` | JSON in (``serve.payload``); outputs, variant, version, batch size out |
| ``GET /healthz`` | 200 while the process serves (liveness) |
| ``GET /readyz`` | 200 once every variant is loaded, warmed and batching; 503 before |
| ``GET /metrics`` | Prometheus text (``serve.metrics``) |
| ``GET /v1/status`` | variants and versions, drift, shadow, alerts (JSON) |
| ``POST /admin/reload`` | hot-swap new champions of registry aliases (or one variant to a source) |

A request's latency budget is ``latency_budget_ms`` in the body or the
``X-Latency-Budget-Ms`` header. Bad requests get 4xx with ``{"error": message}``; a
failing model run gets 500 with its message; neither stops the server.

Example:
    >>> app = build_app([("fp32", "runs/dc")], ServeConfig())  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..errors import NetpressError
from ..runtime import load
from .config import ServeConfig
from .drift import check_reference
from .ladder import Ladder, Variant
from .metrics import Metrics
from .monitor import Monitor
from .payload import BadRequest, parse
from .sources import resolve


def _error(metrics: Metrics, e: BadRequest) -> JSONResponse:
    metrics.errors.labels(reason=e.reason).inc()
    metrics.requests.labels(variant="none", status=str(e.status)).inc()
    return JSONResponse({"error": str(e)}, status_code=e.status)


async def _body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"request body is {int(declared):,} bytes, more than the server's limit "
                         f"of {limit:,}; send fewer examples per request", 413, "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body is over the server's limit of {limit:,} bytes; send "
                             "fewer examples per request", 413, "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _budget(request: Request, body_budget: float | None) -> float | None:
    raw = request.headers.get("x-latency-budget-ms")
    if raw is None:
        return body_budget
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v <= 0:
        raise BadRequest(f"X-Latency-Budget-Ms must be a positive number, got {raw!r}", 422, "fields")
    return v


def load_companions(first, baseline: str | None, reference: str | None):
    """The shadow baseline (a runtime Model) and the drift reference (a dict), from the
    given paths or else from the first variant's folder; None where there is none."""
    base_path = Path(baseline) if baseline else first.resolved.companion("baseline.netpress")
    ref_path = Path(reference) if reference else first.resolved.companion("reference.json")
    base = load(base_path, threads=1) if base_path is not None else None
    ref = None
    if ref_path is not None:
        if not ref_path.is_file():
            raise NetpressError(f"drift reference not found: {ref_path}; use the reference.json "
                                "of a `netpress compress` run folder")
        ref = check_reference(json.loads(ref_path.read_text(encoding="utf-8")))
    return base, ref


def build_app(variants: list[tuple[str, str]], cfg: ServeConfig | None = None,
              baseline: str | None = None, reference: str | None = None,
              cache: str = ".netpress/serve-cache", tracking_uri: str | None = None,
              admin: bool = True) -> FastAPI:
    """The app for ``variants`` (``(name, source)`` best first; see ``serve.sources``)."""
    cfg = cfg or ServeConfig()
    metrics = Metrics()

    def on_batch(name: str, n: int, dt: float) -> None:
        metrics.batch.labels(variant=name).observe(n)

    ladder = Ladder([Variant.load(name, resolve(src, cache, tracking_uri), cfg.threads,
                                  max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                                  on_batch=on_batch) for name, src in variants], cfg.queue_step)
    for v in ladder.variants:
        metrics.set_version(v.name, None, v.version)
    base, ref = load_companions(ladder.first, baseline, reference)
    monitor = Monitor(cfg, metrics, ref, base)
    sources = dict(variants)
    state = {"ready": False}
    swap_lock = asyncio.Lock()

    async def reload(only: str | None = None, source: str | None = None) -> dict:
        loop = asyncio.get_running_loop()
        done: dict = {"swapped": [], "unchanged": []}
        async with swap_lock:
            for v in ladder.variants:
                if only is not None and v.name != only:
                    continue
                src = source or sources[v.name]
                res = await loop.run_in_executor(None, resolve, src, cache, tracking_uri)
                if res.version == v.version and res.artifact == v.resolved.artifact:
                    done["unchanged"].append({"variant": v.name, "version": v.version})
                    continue
                old = v.version
                await loop.run_in_executor(None, v.swap, res, cfg.threads)
                sources[v.name] = src
                metrics.swaps.labels(variant=v.name).inc()
                metrics.set_version(v.name, old, res.version)
                done["swapped"].append({"variant": v.name, "from": old, "to": res.version})
        return done

    async def watch() -> None:
        while True:
            await asyncio.sleep(cfg.watch_seconds)
            with contextlib.suppress(NetpressError, OSError):
                await reload()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        for v in ladder.variants:
            v.batcher.start()
        watcher = asyncio.create_task(watch()) if cfg.watch_seconds > 0 and any(
            v.resolved.movable for v in ladder.variants) else None
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            if watcher is not None:
                watcher.cancel()
            for v in ladder.variants:
                await v.batcher.stop()
            monitor.close()

    app = FastAPI(title="netpress serve", lifespan=lifespan)
    app.state.ladder, app.state.monitor, app.state.metrics = ladder, monitor, metrics

    @app.post("/v1/predict")
    async def predict(request: Request):
        t0 = time.perf_counter()
        try:
            req = parse(await _body(request, cfg.max_body_bytes), ladder.first.model.inputs,
                        cfg.max_body_bytes, cfg.max_examples)
            budget = _budget(request, req.budget_ms)
            try:
                v = ladder.pick(budget, req.n, req.variant)
            except KeyError:
                raise BadRequest(f"no variant {req.variant!r}; this server has "
                                 f"{list(ladder.by_name)}", 422, "variant") from None
        except BadRequest as e:
            return _error(metrics, e)
        metrics.depth.labels(variant=v.name).set(v.batcher.depth + req.n)
        try:
            out, batch = await v.batcher.submit(req.feeds)
        except Exception as e:  # noqa: BLE001 - the request fails, the server stays up
            metrics.errors.labels(reason="model").inc()
            metrics.requests.labels(variant=v.name, status="500").inc()
            return JSONResponse({"error": f"the model failed on this input: {str(e)[:300]}"},
                                status_code=500)
        monitor.observe(req.feeds, out)
        metrics.depth.labels(variant=v.name).set(v.batcher.depth)
        metrics.requests.labels(variant=v.name, status="200").inc()
        metrics.latency.labels(variant=v.name).observe(time.perf_counter() - t0)
        return {"outputs": out.tolist(), "variant": v.name, "version": v.version,
                "batch_size": batch}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if not state["ready"]:
            return JSONResponse({"status": "starting"}, status_code=503)
        return {"status": "ready", "variants": [v.name for v in ladder.variants]}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/status")
    async def status():
        monitor.flush()
        return {"variants": [{"name": v.name, "version": v.version, "source": sources[v.name],
                              "queue_depth": v.batcher.depth,
                              "expected_ms": v.batcher.estimate_ms(1)} for v in ladder.variants],
                **monitor.status()}

    if admin:
        @app.post("/admin/reload")
        async def admin_reload(request: Request):
            raw = await request.body()
            try:
                obj = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as e:
                return JSONResponse({"error": f"body is not valid JSON ({e})"}, status_code=400)
            if not isinstance(obj, dict) or set(obj) - {"variant", "source"} or \
                    ("source" in obj and "variant" not in obj):
                return JSONResponse({"error": 'send {} or {"variant": NAME, "source": SOURCE}'},
                                    status_code=422)
            if obj.get("variant") is not None and obj["variant"] not in ladder.by_name:
                return JSONResponse({"error": f"no variant {obj['variant']!r}"}, status_code=422)
            try:
                return await reload(obj.get("variant"), obj.get("source"))
            except NetpressError as e:
                return JSONResponse({"error": str(e)}, status_code=422)

    return app

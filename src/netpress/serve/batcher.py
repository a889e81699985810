"""Micro-batching: requests that arrive within a few milliseconds run as one batch.

Each variant of the ladder has one ``MicroBatcher``: an asyncio queue drained by one
worker task that takes the first request, waits at most ``max_wait_ms`` for more (up to
``max_batch`` examples, same input shapes and dtypes only), runs the batch in ONNX
Runtime on a dedicated thread, and splits the outputs back. The model is read once per
batch from ``self.model``, so assigning a new one (a hot swap) takes effect at the next
batch while the running batch finishes on the old one: no request is dropped.

Written here because the serving frameworks that batch (Ray Serve, BentoML, Triton)
each bring their own server and process model; this is ~150 lines on asyncio.

Example:
    >>> b = MicroBatcher(model, max_batch=32, max_wait_ms=2)  # doctest: +SKIP
    >>> out = await b.submit({"input": x})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field

import numpy as np

EWMA = 0.2


def shape_key(feeds: dict[str, np.ndarray]) -> tuple:
    """What must agree for two requests to share a batch: per input, the dtype and the
    shape after the batch dimension.

    Example:
        >>> shape_key({"x": np.zeros((3, 4), np.float32)})
        (('x', 'float32', (4,)),)
    """
    return tuple((k, v.dtype.name, v.shape[1:]) for k, v in feeds.items())


@dataclass
class _Item:
    feeds: dict[str, np.ndarray]
    n: int
    future: asyncio.Future
    t0: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Batches requests for one model; ``submit`` returns ``(outputs, batch_size)``."""

    def __init__(self, model, max_batch: int = 32, max_wait_ms: float = 2.0, on_batch=None):
        self.model = model
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch  # called (batch examples, seconds) after each batch
        self.depth = 0  # examples waiting or running
        self.batch_ms = 1.0  # EWMA of a batch's wall time
        self.example_ms = 0.1  # EWMA of wall time per example in a batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._carry: _Item | None = None
        self._task: asyncio.Task | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netpress-batch")

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        """Stop the worker and its thread (requests still queued get an error)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)

    def estimate_ms(self, n: int = 1) -> float:
        """Expected milliseconds until a new request of ``n`` examples is answered: the
        batches ahead of it plus its own, plus the batching wait."""
        ahead = self.depth // self.max_batch
        return (ahead + 1) * self.batch_ms + n * self.example_ms + self.max_wait * 1000

    async def submit(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
        """Queue one request (arrays with the batch first) and wait for its outputs."""
        assert self._queue is not None, "start() the batcher first"
        n = len(next(iter(feeds.values())))
        item = _Item(feeds, n, asyncio.get_running_loop().create_future())
        self.depth += n
        await self._queue.put(item)
        return await item.future

    async def _next(self, timeout: float | None) -> _Item | None:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        assert self._queue is not None
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            assert first is not None
            items, key, n = [first], shape_key(first.feeds), first.n
            deadline = time.perf_counter() + self.max_wait
            while n < self.max_batch:
                left = deadline - time.perf_counter()
                if left <= 0 and (self._queue is None or self._queue.empty()):
                    break
                item = await self._next(max(left, 0.0))
                if item is None:
                    break
                if shape_key(item.feeds) != key or n + item.n > self.max_batch:
                    self._carry = item
                    break
                items.append(item)
                n += item.n
            model = self.model  # a swap during this batch applies to the next one
            feeds = {k: np.concatenate([it.feeds[k] for it in items]) if len(items) > 1
                     else items[0].feeds[k] for k in first.feeds}
            t0 = time.perf_counter()
            try:
                out = await loop.run_in_executor(self._pool, model.run, feeds)
            except Exception as e:  # noqa: BLE001 - the requests get the error, the worker lives
                for it in items:
                    self.depth -= it.n
                    if not it.future.done():
                        it.future.set_exception(e)
                continue
            dt = time.perf_counter() - t0
            self.batch_ms += EWMA * (dt * 1000 - self.batch_ms)
            self.example_ms += EWMA * (dt * 1000 / n - self.example_ms)
            if self.on_batch is not None:
                self.on_batch(n, dt)
            start = 0
            for it in items:
                self.depth -= it.n
                if not it.future.done():
                    it.future.set_result((out[start:start + it.n], n))
                start += it.n

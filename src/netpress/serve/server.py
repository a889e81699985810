"""Run the app under uvicorn: in the foreground (the CLI) or in a thread (tests, benchmarks).

Example:
    >>> with serving(build_app([("fp32", "m.netpress")])) as url:  # doctest: +SKIP
    ...     urllib.request.urlopen(url + "/readyz").status
    200
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now.

    Example:
        >>> 0 < free_port() < 65536
        True
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def config(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"):
    """uvicorn's config for ``app``: one process, asyncio loop, h11, no access log."""
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          loop="asyncio", http="h11", lifespan="on", timeout_graceful_shutdown=5)


def run(app, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` until interrupted."""
    uvicorn.Server(config(app, host, port, log_level="info")).run()


@contextlib.contextmanager
def serving(app, host: str = "127.0.0.1", port: int | None = None, timeout: float = 30.0):
    """Serve ``app`` in a thread; yields the base URL once ``/readyz`` answers 200."""
    port = port or free_port(host)
    server = uvicorn.Server(config(app, host, port))
    thread = threading.Thread(target=server.run, name="netpress-serve", daemon=True)
    thread.start()
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the server at {url} did not become ready in {timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
